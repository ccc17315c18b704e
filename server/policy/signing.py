"""The rules of signing the minutes: who signs in what role, when a version is locked, which
version is current, and how many wrong PINs a signing key takes before it rests. Pure functions."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

SignerRole = Literal["chair", "secretary", "member"]

# A PIN is a few digits or words: five wrong in a row and the key rests for a quarter of an hour,
# so a hostile colleague at the same screen tries at most 20 PINs an hour (the key is only
# usable by its owner's account anyway).
MAX_WRONG_PINS = 5
PIN_REST = timedelta(minutes=15)


def role_of(user_id: str, chair_id: str | None, secretary_id: str | None) -> SignerRole:
    """The chair and the secretary by name (the minutes' defaults filled in); anyone else who
    took part signs as a member."""
    if user_id == chair_id:
        return "chair"
    if user_id == secretary_id:
        return "secretary"
    return "member"


def locks(roles: Collection[str]) -> bool:
    """A version is locked once its chair and its secretary have both signed it."""
    return "chair" in roles and "secretary" in roles


@dataclass(frozen=True)
class Frozen:
    """The latest version frozen so far (at its first signature)."""

    version: int
    notes_upto: int  # the last note's seq it holds


def current_version(latest: Frozen | None, last_note_seq: int) -> tuple[int, bool]:
    """The version now to read and sign, and whether it is frozen already. A note written after
    the latest version was frozen (an addendum once it is locked) needs a new version holding it."""
    if latest is None:
        return 1, False
    if last_note_seq > latest.notes_upto:
        return latest.version + 1, False
    return latest.version, True


def resting(locked_until: datetime | None, now: datetime) -> bool:
    """Is the key resting after too many wrong PINs?"""
    return locked_until is not None and now < locked_until


def after_wrong_pin(count: int, now: datetime) -> tuple[int, datetime | None]:
    """`count` wrong PINs in a row now: the count to keep, and until when the key rests (None:
    not yet). A rest starts the count again."""
    if count >= MAX_WRONG_PINS:
        return 0, now + PIN_REST
    return count, None
