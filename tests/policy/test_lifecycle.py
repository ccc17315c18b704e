"""The consult's and the round session's state tables (server/lifecycle.py): every action × status."""

from __future__ import annotations

import pytest

from server.contract.errors import AppError
from server.policy import lifecycle

# The whole table written out: (action, from) -> to. Anything missing is refused.
ALLOWED: dict[tuple[str, str], str] = {
    ("offer", "queued"): "offered",
    ("accept", "offered"): "active",
    ("decline", "offered"): "queued",
    ("expire", "offered"): "queued",
    ("widen", "queued"): "queued",
    ("cancel", "queued"): "cancelled",
    ("cancel", "offered"): "cancelled",
    ("end", "active"): "ended",
    ("close", "active"): "cancelled",
}

# The words a user has always been given when an action does not fit.
MESSAGES = {
    "accept": "this consult is no longer offered to you",
    "decline": "this consult is not offered to you",
    "widen": "widen a named request once it was declined or went unanswered",
    "cancel": "an accepted consult is ended with consult:end, not cancelled",
    "end": "only an accepted consult can be ended",
}


def test_the_statuses_and_actions_are_the_ones_the_service_knows() -> None:
    assert set(lifecycle.CONSULT_STATUSES) == {"queued", "offered", "active", "ended", "cancelled"}
    assert set(lifecycle.TRANSITIONS) == set(lifecycle.CONSULT_ACTIONS) == set(lifecycle.REFUSALS)
    assert set(lifecycle.OPEN_STATUSES) == {"queued", "offered", "active"}


@pytest.mark.parametrize("status", lifecycle.CONSULT_STATUSES)
@pytest.mark.parametrize("action", lifecycle.CONSULT_ACTIONS)
def test_every_action_from_every_status(action: lifecycle.ConsultAction, status: str) -> None:
    expected = ALLOWED.get((action, status))
    assert lifecycle.allows(action, status) is (expected is not None)
    if expected is not None:
        assert lifecycle.check_transition(action, status) == expected
        return
    with pytest.raises(AppError) as refused:
        lifecycle.check_transition(action, status)
    assert refused.value.code == "conflict"
    if (action, status) == ("accept", "active"):
        assert refused.value.message == "another specialist has already accepted this consult"
    elif action in MESSAGES:
        assert refused.value.message == MESSAGES[action]


def test_an_unknown_status_is_refused_by_every_action() -> None:
    for action in lifecycle.CONSULT_ACTIONS:
        assert not lifecycle.allows(action, "paused")
        with pytest.raises(AppError):
            lifecycle.check_transition(action, "paused")


def test_ended_and_cancelled_are_final() -> None:
    for status in ("ended", "cancelled"):
        assert not any(lifecycle.allows(action, status) for action in lifecycle.CONSULT_ACTIONS)


@pytest.mark.parametrize("status", [*lifecycle.SESSION_STATUSES, None])
@pytest.mark.parametrize("action", ["focus", "end"])
def test_every_session_action_from_every_state(action: lifecycle.SessionAction, status: str | None) -> None:
    expected = {("focus", "active"): "active", ("end", "active"): "ended"}.get((action, status))
    assert lifecycle.session_allows(action, status) is (expected is not None)
    if expected is not None:
        assert lifecycle.check_session(action, status) == expected
        return
    with pytest.raises(AppError) as refused:
        lifecycle.check_session(action, status)
    assert refused.value.code == "conflict"
    if action == "focus":
        assert refused.value.message == "the round is not in progress; join it first"
