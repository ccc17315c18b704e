"""The rules of signing the minutes (server/policy/signing.py): pure, no servers."""

from __future__ import annotations

from datetime import UTC, datetime

from server.policy import signing
from server.policy.signing import Frozen

NOW = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)


def test_the_chair_and_the_secretary_by_name_and_everyone_else_as_a_member() -> None:
    assert signing.role_of("u-binh", "u-binh", "u-lan") == "chair"
    assert signing.role_of("u-lan", "u-binh", "u-lan") == "secretary"
    assert signing.role_of("u-ha", "u-binh", "u-lan") == "member"


def test_a_version_is_locked_once_the_chair_and_the_secretary_both_signed() -> None:
    assert not signing.locks([])
    assert not signing.locks(["chair", "member"])
    assert not signing.locks(["secretary"])
    assert signing.locks(["secretary", "member", "chair"])


def test_the_current_version_follows_the_notes() -> None:
    assert signing.current_version(None, 0) == (1, False)  # nothing signed: version 1, generated on demand
    assert signing.current_version(Frozen(1, 4), 4) == (1, True)  # signed, nothing written since
    assert signing.current_version(Frozen(1, 4), 5) == (2, False)  # a note since: the next version
    assert signing.current_version(Frozen(2, 5), 5) == (2, True)


def test_five_wrong_pins_rest_the_key_then_counting_starts_again() -> None:
    count, until = 0, None
    for _ in range(signing.MAX_WRONG_PINS - 1):
        count, until = signing.after_wrong_pin(count + 1, NOW)
        assert until is None
    count, until = signing.after_wrong_pin(count + 1, NOW)
    assert count == 0 and until == NOW + signing.PIN_REST
    assert signing.resting(until, NOW) and not signing.resting(until, NOW + signing.PIN_REST)
    assert not signing.resting(None, NOW)
