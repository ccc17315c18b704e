"""When a consult's call is recorded by itself, as a rule: pure, no I/O.

A hospital may set its consults to be recorded by themselves (`record_consults`, set by an
admin). The recording then starts once both sides are in the call: the requesting side (the
clinician who asked or a colleague of the requesting hospital) and the accepted specialist, who
chairs it, so it is written in the specialist's name. The patient's consent to `recording` is
still needed: without it nothing starts (and nothing is refused: nobody asked). It starts once
per consult: a recording stopped by the chair is not started again by someone rejoining.
Ward rounds are not recorded by themselves: their lead starts the recording.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from server.policy.consent import consents_to


@dataclass(frozen=True)
class InCall:
    """Someone in the call now: their account and their hospital."""

    user_id: str
    hospital_id: str


def starts_by_itself(
    record_consults: bool,
    scopes: Sequence[str] | None,
    requesting_hospital_id: str,
    specialist_id: str | None,
    in_call: Iterable[InCall],
    recorded_before: bool,
) -> bool:
    """Whether the server starts recording this consult's call now, with nobody asking."""
    if not record_consults or recorded_before or specialist_id is None:
        return False
    if not consents_to(scopes, "recording"):
        return False
    present = list(in_call)
    chair_in = any(p.user_id == specialist_id for p in present)
    requesting_side_in = any(p.user_id != specialist_id and p.hospital_id == requesting_hospital_id for p in present)
    return chair_in and requesting_side_in
