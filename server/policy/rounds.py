"""The rules of a ward round, pure: who takes part, who edits, plans and leads, when a lead of
another network is only asked, the checks of a schedule and the caps.

The round and the account are read through the small protocols below (`server.records.models.Round`
and `server.records.users.Account` have them), so each rule is tested on plain values
(tests/policy/test_rounds.py). The reads and writes are `server/records/rounds.py`'s, the commands
`server/actions/rounds.py`'s.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from server.contract.errors import AppError
from server.policy import recurrence
from server.policy.lifecycle import LeadStatus
from server.policy.scope import InView, sees

MAX_DURATION_MIN = 8 * 60
STARTING_WINDOW = timedelta(minutes=5)  # a `round:starting` notice is sent up to this late
OVERRUN = timedelta(hours=2)  # an empty session ends on its own this long after its scheduled end


class RoundLike(Protocol):
    """What the rules read of a round."""

    @property
    def hospital_id(self) -> str: ...
    @property
    def lead_specialist_id(self) -> str: ...
    @property
    def lead_status(self) -> str: ...
    @property
    def created_by(self) -> str: ...
    @property
    def participant_ids(self) -> list[str]: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def recurrence(self) -> str | None: ...
    @property
    def until(self) -> date | None: ...
    @property
    def skipped(self) -> list[str]: ...
    @property
    def cancelled_at(self) -> datetime | None: ...


class Person(Protocol):
    """What the rules read of an account."""

    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def hospital_id(self) -> str: ...


def is_lead(item: RoundLike, user_id: str) -> bool:
    """The round's lead, once they accepted it (a lead of the network is accepted at once)."""
    return user_id == item.lead_specialist_id and item.lead_status == "accepted"


def lead_must_accept(lead_id: str, lead_hospital_id: str | None, creator_id: str, network: set[str]) -> bool:
    """Whether a lead named by `creator_id` is only asked: a specialist whose hospital is not in
    `network` (the round's hospital and its sister hospitals), unless they named themselves."""
    return lead_id != creator_id and lead_hospital_id not in network


def lead_status_for(lead_id: str, lead_hospital_id: str | None, named_by: str, network: set[str]) -> LeadStatus:
    """`pending` for a lead who must accept first, else `accepted`."""
    return "pending" if lead_must_accept(lead_id, lead_hospital_id, named_by, network) else "accepted"


def takes_part(item: RoundLike, account: Person) -> bool:
    return (
        is_lead(item, account.id)
        or account.id == item.created_by
        or account.id in (item.participant_ids or [])
        or (account.role == "clinician" and account.hospital_id == item.hospital_id)
    ) and account.role in ("specialist", "clinician")


def may_edit_patients(item: RoundLike, account: Person) -> bool:
    return is_lead(item, account.id) or (account.role == "clinician" and account.hospital_id == item.hospital_id)


def may_lead(item: RoundLike, account: Person) -> bool:
    """Who moves the focus and ends a session: the lead and the invited specialists."""
    return account.role == "specialist" and (is_lead(item, account.id) or account.id in (item.participant_ids or []))


def may_edit_schedule(item: RoundLike, account: Person) -> bool:
    return (
        account.role == "admin"
        or account.id == item.created_by
        or is_lead(item, account.id)
        or (account.role == "clinician" and account.hospital_id == item.hospital_id)
    )


def may_create(account: Person, hospital_id: str, sisters_of_hospital: set[str]) -> bool:
    """`sisters_of_hospital`: the upper-level hospitals paired with `hospital_id`."""
    if account.role == "admin":
        return True
    if account.role == "clinician":
        return account.hospital_id == hospital_id
    return account.role == "specialist" and account.hospital_id in sisters_of_hospital


def supervises(item: RoundLike, account: Person, lead_hospital_id: str | None, hospitals: InView) -> bool:
    """`hospitals`: those in `account`'s scope (`server.records.provinces.in_view`)."""
    if account.role == "admin":
        return True
    if account.role != "supervisor":
        return False
    return sees(hospitals, item.hospital_id, lead_hospital_id)


def team(item: RoundLike, clinicians: Iterable[str]) -> set[str]:
    """Everyone taking part: the lead once accepted, the invited, the creator, and `clinicians`
    (the active clinicians of the round's hospital)."""
    lead = [item.lead_specialist_id] if item.lead_status == "accepted" else []
    return {*lead, item.created_by, *(item.participant_ids or []), *clinicians}


def occurrences_of(item: RoundLike, start: datetime, end: datetime) -> list[datetime]:
    """The occurrences in [start, end) that take place."""
    if item.cancelled_at is not None:
        return []
    return recurrence.occurrences(item.starts_at, item.recurrence, item.until, item.skipped or [], start, end)


def cancelled_occurrences_of(item: RoundLike, start: datetime, end: datetime) -> list[datetime]:
    """The occurrences in [start, end) that were cancelled: the days cancelled one by one, or
    every one of a round cancelled as a whole."""
    planned = recurrence.occurrences(item.starts_at, item.recurrence, item.until, [], start, end)
    taking_place = set(occurrences_of(item, start, end))
    return [moment for moment in planned if moment not in taking_place]


def overdue(started_at: datetime, duration_min: int, now: datetime) -> bool:
    """Whether a session started at `started_at` is `OVERRUN` past its scheduled end at `now`."""
    return started_at + timedelta(minutes=duration_min) + OVERRUN <= now


def check_times(starts_at: datetime, rule: str | None, until: date | None, duration_min: int) -> None:
    if not 5 <= duration_min <= MAX_DURATION_MIN:
        raise AppError("invalid", f"duration_min must be between 5 and {MAX_DURATION_MIN}")
    if rule is None and until is not None:
        raise AppError("invalid", "until is for a daily or weekly round")
    if until is not None and until < recurrence.day_of(starts_at):
        raise AppError("invalid", "until must not be before the first occurrence")


def check_people(roles: Mapping[str, str], lead_id: str, participant_ids: Collection[str]) -> None:
    """`roles`: the role of each named user who exists (user id -> role)."""
    if roles.get(lead_id) != "specialist":
        raise AppError("invalid", "lead_specialist_id must be a specialist")
    for user_id in participant_ids:
        if roles.get(user_id) not in ("specialist", "clinician"):
            raise AppError("invalid", "participant_ids must be specialists or clinicians")


@dataclass(frozen=True)
class Caps:
    """Settings ROUNDS_PER_HOSPITAL and ROUND_MAX_PATIENTS."""

    rounds: int
    patients: int


def check_new_round(caps: Caps, patients: int, lasting: int) -> None:
    """A new round with `patients` listed, at a hospital with `lasting` rounds neither cancelled
    nor over: `too_large` past either cap."""
    if patients > caps.patients:
        raise AppError("too_large", f"a round lists at most {caps.patients} patients")
    if lasting >= caps.rounds:
        raise AppError(
            "too_large",
            f"a hospital has at most {caps.rounds} rounds scheduled (neither cancelled nor over); "
            "cancel one that is no longer held first",
        )


def check_room_for_patient(listed: int, cap: int) -> None:
    """One more patient on a list of `listed`: `too_large` at the cap ROUND_MAX_PATIENTS."""
    if listed >= cap:
        raise AppError("too_large", f"a round lists at most {cap} patients; remove one first")
