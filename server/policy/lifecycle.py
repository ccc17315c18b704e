"""A consult's life, and a round session's, as tables: which action may move which status where.

Pure policy, no I/O. Every status change asks `check_transition` (or `allows`, for the steps
the service takes on its own and skips quietly) before its compare-and-set on `version`: the
table decides whether the step is allowed at all, the compare-and-set makes it happen once.

    queued ──offer──▶ offered ──accept──▶ active ──end──▶ ended
      ▲ │  ◀─decline/expire─┘                 │
      │ └widen┘                               └close──▶ cancelled (a round patient left undecided)
    queued / offered ──cancel──▶ cancelled

A round patient's consult is created `active` (server/records/rounds.py `open_consult`), so it enters at `active`.
"""

from __future__ import annotations

from typing import Literal, get_args

from server.contract.errors import AppError

ConsultStatus = Literal["queued", "offered", "active", "ended", "cancelled"]
CONSULT_STATUSES: tuple[ConsultStatus, ...] = get_args(ConsultStatus)
# Statuses whose consult is still open: waiting for a specialist or in progress.
OPEN_STATUSES: tuple[ConsultStatus, ...] = ("queued", "offered", "active")

ConsultAction = Literal["offer", "accept", "decline", "expire", "widen", "cancel", "end", "close"]
CONSULT_ACTIONS: tuple[ConsultAction, ...] = get_args(ConsultAction)

# action: (the statuses it may start from, the status it leaves).
TRANSITIONS: dict[ConsultAction, tuple[frozenset[ConsultStatus], ConsultStatus]] = {
    "offer": (frozenset({"queued"}), "offered"),  # the service rings specialists
    "accept": (frozenset({"offered"}), "active"),  # a specialist takes it
    "decline": (frozenset({"offered"}), "queued"),  # the last one offered says no
    "expire": (frozenset({"offered"}), "queued"),  # nobody answered in time
    "widen": (frozenset({"queued"}), "queued"),  # a named request goes to the whole pool
    "cancel": (frozenset({"queued", "offered"}), "cancelled"),  # the clinician withdraws it
    "end": (frozenset({"active"}), "ended"),  # with its outcome
    "close": (frozenset({"active"}), "cancelled"),  # a round patient without a decision
}

# What the user is told when an action does not fit the consult's status (the service's own
# steps, `offer`, `expire` and `close`, are skipped instead; their text appears in logs only).
REFUSALS: dict[ConsultAction, str] = {
    "offer": "this consult is not waiting to be offered",
    "accept": "this consult is no longer offered to you",
    "decline": "this consult is not offered to you",
    "expire": "this consult has no offer to expire",
    "widen": "widen a named request once it was declined or went unanswered",
    "cancel": "an accepted consult is ended with consult:end, not cancelled",
    "end": "only an accepted consult can be ended",
    "close": "only a consult in progress is closed undecided",
}
# Where one status deserves a more precise word than the action's.
REFUSALS_FROM: dict[tuple[ConsultAction, str], str] = {
    ("accept", "active"): "another specialist has already accepted this consult",
}


def allows(action: ConsultAction, status: str) -> bool:
    """Whether `action` may move a consult that is `status` now."""
    return status in TRANSITIONS[action][0]


def refusal(action: ConsultAction, status: str) -> AppError:
    """The `conflict` a user gets when `action` does not fit `status`."""
    return AppError("conflict", REFUSALS_FROM.get((action, status), REFUSALS[action]))


def check_transition(action: ConsultAction, status: str) -> ConsultStatus:
    """The status `action` leaves a consult that is `status` now; `AppError("conflict")` if it may not."""
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise refusal(action, status)
    return target


# A round's session: opened `active` by its start (one per round and day), then ended once.
SessionStatus = Literal["active", "ended"]
SESSION_STATUSES: tuple[SessionStatus, ...] = get_args(SessionStatus)
SessionAction = Literal["focus", "end"]
SESSION_TRANSITIONS: dict[SessionAction, tuple[frozenset[SessionStatus], SessionStatus]] = {
    "focus": (frozenset({"active"}), "active"),  # the lead moves to another patient
    "end": (frozenset({"active"}), "ended"),  # by the lead, or on its own when overdue and empty
}
SESSION_REFUSALS: dict[SessionAction, str] = {
    "focus": "the round is not in progress; join it first",
    "end": "the round is not in progress",
}


# A round's lead: asked first when of another network (`pending`), until they answer.
LeadStatus = Literal["pending", "accepted", "declined"]


def session_allows(action: SessionAction, status: str | None) -> bool:
    """Whether `action` may be taken on a session that is `status` now (None: there is none)."""
    return status in SESSION_TRANSITIONS[action][0]


def check_session(action: SessionAction, status: str | None) -> SessionStatus:
    """The status `action` leaves a session in; `AppError("conflict")` if it may not be taken."""
    sources, target = SESSION_TRANSITIONS[action]
    if status not in sources:
        raise AppError("conflict", SESSION_REFUSALS[action])
    return target
