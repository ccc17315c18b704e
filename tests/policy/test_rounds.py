"""The rules of a ward round (server/policy/rounds.py), as tables: who takes part, edits the list,
edits the schedule, leads, creates and supervises; when a lead of another network is only asked;
the checks of a schedule and the caps. Pure: a round and an account are plain values.

The round of these tables is held at Ba Vì (a district hospital) and led by a specialist at Xanh
Pôn, its sister hospital; a clinician at Ba Vì created it and invited a second specialist."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import pytest

from server.contract.errors import AppError
from server.policy.recurrence import VIETNAM
from server.policy.rounds import (
    MAX_DURATION_MIN,
    OVERRUN,
    Caps,
    cancelled_occurrences_of,
    check_new_round,
    check_people,
    check_room_for_patient,
    check_times,
    is_lead,
    lead_must_accept,
    lead_status_for,
    may_create,
    may_edit_patients,
    may_edit_schedule,
    may_lead,
    occurrences_of,
    overdue,
    supervises,
    takes_part,
    team,
)

NINE = datetime(2025, 3, 3, 9, tzinfo=VIETNAM)  # Monday 3 March 2025, 09:00 in Vietnam


@dataclass(frozen=True)
class Ward:
    hospital_id: str = "bavi"
    lead_specialist_id: str = "lead"
    lead_status: str = "accepted"
    created_by: str = "creator"
    participant_ids: list[str] = field(default_factory=lambda: ["invited-specialist", "invited-clinician"])
    starts_at: datetime = NINE
    recurrence: str | None = "daily"
    until: date | None = date(2025, 3, 7)
    skipped: list[str] = field(default_factory=list)
    cancelled_at: datetime | None = None


@dataclass(frozen=True)
class Who:
    id: str
    role: str
    hospital_id: str


ROUND = Ward()
PENDING = replace(ROUND, lead_status="pending")

LEAD = Who("lead", "specialist", "xanhpon")
CREATOR = Who("creator", "clinician", "bavi")
TEAM_CLINICIAN = Who("nurse-doctor", "clinician", "bavi")
INVITED_SPECIALIST = Who("invited-specialist", "specialist", "xanhpon")
INVITED_CLINICIAN = Who("invited-clinician", "clinician", "baichay")
STRANGER_SPECIALIST = Who("stranger", "specialist", "xanhpon")
OTHER_CLINICIAN = Who("other", "clinician", "baichay")
ADMIN = Who("admin", "admin", "so-hanoi")
SUPERVISOR = Who("supervisor", "supervisor", "so-hanoi")

# who: (takes part, edits patients, leads, edits schedule)
RIGHTS = [
    (LEAD, (True, True, True, True)),
    (CREATOR, (True, True, False, True)),
    (TEAM_CLINICIAN, (True, True, False, True)),
    (INVITED_SPECIALIST, (True, False, True, False)),
    (INVITED_CLINICIAN, (True, False, False, False)),
    (STRANGER_SPECIALIST, (False, False, False, False)),
    (OTHER_CLINICIAN, (False, False, False, False)),
    (ADMIN, (False, False, False, True)),
    (SUPERVISOR, (False, False, False, False)),
]


@pytest.mark.parametrize(("who", "rights"), RIGHTS, ids=[w.id for w, _ in RIGHTS])
def test_who_does_what_in_a_round(who: Who, rights: tuple[bool, bool, bool, bool]) -> None:
    assert (
        takes_part(ROUND, who),
        may_edit_patients(ROUND, who),
        may_lead(ROUND, who),
        may_edit_schedule(ROUND, who),
    ) == rights


def test_a_lead_who_has_not_accepted_has_no_part_in_the_round() -> None:
    for status in ("pending", "declined"):
        asked = replace(ROUND, lead_status=status)
        assert not is_lead(asked, LEAD.id)
        assert not takes_part(asked, LEAD)
        assert not may_edit_patients(asked, LEAD)
        assert not may_lead(asked, LEAD)
        assert not may_edit_schedule(asked, LEAD)
        assert LEAD.id not in team(asked, [])
    assert is_lead(ROUND, LEAD.id)


def test_a_creator_who_is_neither_specialist_nor_clinician_does_not_take_part() -> None:
    by_admin = replace(ROUND, created_by=ADMIN.id)
    assert not takes_part(by_admin, ADMIN)
    assert may_edit_schedule(by_admin, ADMIN)


@pytest.mark.parametrize(
    ("lead_id", "lead_hospital", "creator", "network", "asked"),
    [
        ("lead", "xanhpon", "creator", {"bavi", "xanhpon"}, False),  # a sister hospital's specialist
        ("lead", "bachmai", "creator", {"bavi", "xanhpon"}, True),  # another network: only asked
        ("lead", None, "creator", {"bavi", "xanhpon"}, True),  # no such user: never accepted for them
        ("lead", "bachmai", "lead", {"bavi", "xanhpon"}, False),  # named themselves
    ],
)
def test_a_lead_of_another_network_is_only_asked(
    lead_id: str, lead_hospital: str | None, creator: str, network: set[str], asked: bool
) -> None:
    assert lead_must_accept(lead_id, lead_hospital, creator, network) is asked
    assert lead_status_for(lead_id, lead_hospital, creator, network) == ("pending" if asked else "accepted")


@pytest.mark.parametrize(
    ("who", "hospital_id", "sisters", "allowed"),
    [
        (ADMIN, "bavi", set(), True),
        (CREATOR, "bavi", set(), True),
        (OTHER_CLINICIAN, "bavi", {"xanhpon"}, False),
        (LEAD, "bavi", {"xanhpon"}, True),
        (LEAD, "bavi", {"bachmai"}, False),
        (SUPERVISOR, "bavi", {"so-hanoi"}, False),
    ],
)
def test_who_may_create_a_round(who: Who, hospital_id: str, sisters: set[str], allowed: bool) -> None:
    assert may_create(who, hospital_id, sisters) is allowed


@pytest.mark.parametrize(
    ("who", "lead_hospital", "in_view", "allowed"),
    [
        (ADMIN, "xanhpon", frozenset(), True),
        (SUPERVISOR, "xanhpon", frozenset({"bavi"}), True),  # the round's hospital in view
        (SUPERVISOR, "xanhpon", frozenset({"xanhpon"}), True),  # the lead's hospital in view
        (SUPERVISOR, None, frozenset({"baichay"}), False),
        (SUPERVISOR, "xanhpon", None, True),  # a scope over every hospital
        (LEAD, "xanhpon", None, False),  # not a supervisor
    ],
)
def test_who_supervises_a_round(
    who: Who, lead_hospital: str | None, in_view: frozenset[str] | None, allowed: bool
) -> None:
    assert supervises(ROUND, who, lead_hospital, in_view) is allowed


def test_the_team_is_the_lead_the_invited_the_creator_and_the_clinicians() -> None:
    everyone = {"lead", "creator", "invited-specialist", "invited-clinician", "nurse-doctor"}
    assert team(ROUND, ["nurse-doctor"]) == everyone
    assert team(PENDING, ["nurse-doctor"]) == everyone - {"lead"}


def test_occurrences_taking_place_and_cancelled() -> None:
    week = (NINE, NINE + timedelta(days=7))
    skipped = replace(ROUND, skipped=["2025-03-04"])
    assert len(occurrences_of(ROUND, *week)) == 5  # Monday to Friday, until inclusive
    assert cancelled_occurrences_of(ROUND, *week) == []
    assert NINE.astimezone(UTC) + timedelta(days=1) not in occurrences_of(skipped, *week)
    assert cancelled_occurrences_of(skipped, *week) == [NINE.astimezone(UTC) + timedelta(days=1)]
    cancelled = replace(ROUND, cancelled_at=NINE)
    assert occurrences_of(cancelled, *week) == []
    assert len(cancelled_occurrences_of(cancelled, *week)) == 5


def test_a_session_is_overdue_an_overrun_after_its_scheduled_end() -> None:
    end = NINE + timedelta(minutes=60)
    assert not overdue(NINE, 60, end + OVERRUN - timedelta(seconds=1))
    assert overdue(NINE, 60, end + OVERRUN)


@pytest.mark.parametrize(
    ("rule", "until", "duration", "error"),
    [
        (None, None, 60, None),
        ("daily", date(2025, 3, 3), 60, None),  # the last day may be the first
        (None, None, 4, "duration_min"),
        (None, None, MAX_DURATION_MIN, None),
        (None, None, MAX_DURATION_MIN + 1, "duration_min"),
        (None, date(2025, 3, 7), 60, "until is for a daily or weekly round"),
        ("weekly", date(2025, 3, 2), 60, "until must not be before"),
    ],
)
def test_a_schedule_is_checked(rule: str | None, until: date | None, duration: int, error: str | None) -> None:
    if error is None:
        check_times(NINE, rule, until, duration)
        return
    with pytest.raises(AppError) as raised:
        check_times(NINE, rule, until, duration)
    assert raised.value.code == "invalid" and error in raised.value.message


@pytest.mark.parametrize(
    ("roles", "error"),
    [
        ({"lead": "specialist", "a": "clinician", "b": "specialist"}, None),
        ({"lead": "clinician", "a": "clinician", "b": "specialist"}, "lead_specialist_id"),
        ({"a": "clinician", "b": "specialist"}, "lead_specialist_id"),  # no such lead
        ({"lead": "specialist", "a": "supervisor", "b": "specialist"}, "participant_ids"),
        ({"lead": "specialist", "a": "clinician"}, "participant_ids"),  # no such participant
    ],
)
def test_the_people_named_are_checked(roles: dict[str, str], error: str | None) -> None:
    if error is None:
        check_people(roles, "lead", ["a", "b"])
        return
    with pytest.raises(AppError) as raised:
        check_people(roles, "lead", ["a", "b"])
    assert raised.value.code == "invalid" and error in raised.value.message


@pytest.mark.parametrize(
    ("patients", "lasting", "error"),
    [
        (3, 1, None),
        (3, 2, "rounds scheduled"),
        (4, 0, "lists at most 3 patients"),
        (4, 2, "lists at most 3 patients"),  # the list is checked first
    ],
)
def test_a_new_round_within_the_caps(patients: int, lasting: int, error: str | None) -> None:
    caps = Caps(rounds=2, patients=3)
    if error is None:
        check_new_round(caps, patients, lasting)
        return
    with pytest.raises(AppError) as raised:
        check_new_round(caps, patients, lasting)
    assert raised.value.code == "too_large" and error in raised.value.message


def test_one_more_patient_within_the_cap() -> None:
    check_room_for_patient(2, 3)
    with pytest.raises(AppError) as raised:
        check_room_for_patient(3, 3)
    assert raised.value.code == "too_large" and "remove one first" in raised.value.message
