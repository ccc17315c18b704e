"""Who is offered a consult, and in what order. Pure functions: no I/O, no clock.

The policy, in the words of the programme: sister-hospital specialists first, then the roster of
other hospitals; among equals, whoever has done the fewest consults today, then whoever has been
idle longest. Routine and urgent requests go to one specialist at a time; an emergency goes to
everyone who can take it; a request for a named specialist goes to that specialist only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Urgency = Literal["routine", "urgent", "emergency"]
URGENCIES: tuple[Urgency, ...] = ("emergency", "urgent", "routine")  # most pressing first

SPECIALTIES: dict[str, str] = {
    # code: Vietnamese name shown to users
    "surgery": "Ngoại khoa",
    "internal": "Nội khoa",
    "icu": "Hồi sức cấp cứu",
    "obstetrics": "Sản khoa",
    "trauma": "Chấn thương chỉnh hình",
    "dialysis": "Thận nhân tạo",
    "pediatrics": "Nhi khoa",
    "ent": "Tai mũi họng",
    "cardiology": "Tim mạch",
    "neurology": "Thần kinh",
    "radiology": "Chẩn đoán hình ảnh",
}


@dataclass(frozen=True)
class Candidate:
    """A specialist as the matcher sees them at one moment."""

    user_id: str
    hospital_id: str
    specialties: tuple[str, ...]
    status: str  # available / busy / away, as set by the user or automatically
    online: bool
    holds_offer: bool  # already holds a pending one-at-a-time offer
    in_consult: bool
    consults_today: int = 0
    idle_since: datetime | None = None  # end of their last consult; None: never had one
    # In a ward round's call, set busy for it by the server (they were available when they joined).
    in_round: bool = False


def can_take(candidate: Candidate, specialty: str, *, one_at_a_time: bool) -> bool:
    """Whether this specialist can be offered a request of this specialty now.

    A specialist in a ward round's call is busy for routine and urgent requests, but an
    emergency still reaches them: the round can wait a minute, the emergency cannot."""
    if candidate.in_round:
        free = not one_at_a_time
    else:
        free = candidate.status == "available"
    return (
        specialty in candidate.specialties
        and free
        and candidate.online
        and not candidate.in_consult
        and not (one_at_a_time and candidate.holds_offer)
    )


def rank(candidates: Iterable[Candidate], sister_hospitals: Collection[str]) -> list[Candidate]:
    """Sister hospitals first, then fewest consults today, then idle longest (never busy first)."""

    def key(c: Candidate) -> tuple[int, int, float, str]:
        idle = c.idle_since.timestamp() if c.idle_since is not None else float("-inf")
        return (0 if c.hospital_id in sister_hospitals else 1, c.consults_today, idle, c.user_id)

    return sorted(candidates, key=key)


def choose(
    candidates: Iterable[Candidate],
    *,
    specialty: str,
    urgency: Urgency,
    sister_hospitals: Collection[str],
    named_specialist_id: str | None = None,
    excluded: Collection[str] = (),
) -> list[str]:
    """The specialists who may be offered the request now, best first; empty means it waits.

    An emergency is offered to all of them at once; otherwise to the first whose offer slot is
    free when the offer is made (see `one_at_a_time`). `excluded` declined this request already.
    """
    single = one_at_a_time(urgency)
    able = [c for c in candidates if c.user_id not in excluded and can_take(c, specialty, one_at_a_time=single)]
    if named_specialist_id is not None:
        able = [c for c in able if c.user_id == named_specialist_id]
    return [c.user_id for c in rank(able, sister_hospitals)]


def one_at_a_time(urgency: Urgency) -> bool:
    return urgency != "emergency"


def queue_score(urgency: Urgency, created_at: datetime) -> float:
    """Queue order: emergency, urgent, routine, then oldest first. Lower is served first."""
    return URGENCIES.index(urgency) * 1e13 + created_at.timestamp() * 1000
