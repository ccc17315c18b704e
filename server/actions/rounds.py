"""Ward rounds (đi buồng điện tử): the schedule, its patient list, the sessions held.

The model:

- A **round** is the schedule: a district hospital's ward, a first start, a duration, and a
  recurrence (none, daily or weekly, until an end date); a lead specialist and invited people.
- Its **patient list** is one ordered list per round, the ward's standing list: the district
  team adds, edits, reorders and removes patients before and during any occurrence.
- A **session** is one occurrence that is held, named by its Vietnam date. The first
  `round:join` of the day starts it; every listed patient then gets a consult of kind `round`
  (status `active`), which carries that day's notes and decision (`consult:end`). A patient
  added during the session gets one at once. The session has the focus: the current patient.
- When the session ends (`round:end`, or on its own well after its scheduled end with nobody
  left in the call) the consults still without a decision are closed `cancelled`.

Who does what (policy, pure functions below):

- Create: an admin for any district hospital, a clinician for their own hospital, a specialist
  for a hospital their hospital is the sister (upper) hospital of.
- Take part (see the round, join its call, write notes): the clinicians of the round's hospital
  (the district team), the lead specialist, the invited participants, and whoever created it.
- Edit the patient list: the district team and the lead specialist.
- Move the focus and end the session: the lead specialist and the invited specialists.
- Edit or cancel the schedule: an admin, whoever created it, the lead, the district team.
- Read: besides those taking part, supervisors within their scope (server/policy/scope.py): the
  round's hospital or the lead specialist's hospital is in view (their hospital, or their
  Department of Health's province).

A lead specialist of another network (a hospital neither the round's nor linked to it as a
sister) is only asked: the round's `lead_status` is `pending` until they accept (`accepted`) or
decline (`declined`), and until then the round is not theirs: they do not take part, it is not in
their lists or their `session:state`, and it cannot start. Naming a stranger costs them nothing.

Caps (settings): ROUNDS_PER_HOSPITAL rounds neither cancelled nor over at one hospital,
ROUND_MAX_PATIENTS patients on one round's list; one more is `too_large`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from server import outbox
from server.actions import dispatch
from server.contract import views
from server.contract.errors import AppError
from server.live import keys
from server.outbox import Event, To
from server.policy import lifecycle, recurrence
from server.policy.scope import InView, sees
from server.records import consults
from server.records.models import (
    Consult,
    ConsultEvent,
    Database,
    Hospital,
    Round,
    RoundPatient,
    RoundSession,
    SisterLink,
    User,
    utcnow,
)
from server.records.provinces import in_view
from server.records.users import Account
from server.runtime import loops
from server.runtime.services import Services
from server.runtime.settings import Settings

log = logging.getLogger("telerounds.rounds")

MAX_DURATION_MIN = 8 * 60
MAX_LEAD_REQUESTS = 50  # the pending lead requests one specialist is shown, newest first
STARTING_WINDOW = timedelta(minutes=5)  # a `round:starting` notice is sent up to this late
OVERRUN = timedelta(hours=2)  # an empty session ends on its own this long after its scheduled end


# Policy.


def is_lead(item: Round, user_id: str) -> bool:
    """The round's lead, once they accepted it (a lead of the network is accepted at once)."""
    return user_id == item.lead_specialist_id and item.lead_status == "accepted"


def lead_must_accept(lead_id: str, lead_hospital_id: str | None, creator_id: str, network: set[str]) -> bool:
    """Whether a lead named by `creator_id` is only asked: a specialist whose hospital is not in
    `network` (the round's hospital and its sister hospitals), unless they named themselves."""
    return lead_id != creator_id and lead_hospital_id not in network


def takes_part(item: Round, account: Account) -> bool:
    return (
        is_lead(item, account.id)
        or account.id == item.created_by
        or account.id in (item.participant_ids or [])
        or (account.role == "clinician" and account.hospital_id == item.hospital_id)
    ) and account.role in ("specialist", "clinician")


def may_edit_patients(item: Round, account: Account) -> bool:
    return is_lead(item, account.id) or (account.role == "clinician" and account.hospital_id == item.hospital_id)


def may_lead(item: Round, account: Account) -> bool:
    """Who moves the focus and ends a session: the lead and the invited specialists."""
    return account.role == "specialist" and (is_lead(item, account.id) or account.id in (item.participant_ids or []))


def may_edit_schedule(item: Round, account: Account) -> bool:
    return (
        account.role == "admin"
        or account.id == item.created_by
        or is_lead(item, account.id)
        or (account.role == "clinician" and account.hospital_id == item.hospital_id)
    )


def may_create(account: Account, hospital_id: str, sisters_of_hospital: set[str]) -> bool:
    """`sisters_of_hospital`: the upper-level hospitals paired with `hospital_id`."""
    if account.role == "admin":
        return True
    if account.role == "clinician":
        return account.hospital_id == hospital_id
    return account.role == "specialist" and account.hospital_id in sisters_of_hospital


def supervises(item: Round, account: Account, lead_hospital_id: str | None, hospitals: InView) -> bool:
    """`hospitals`: those in `account`'s scope (`server.records.provinces.in_view`)."""
    if account.role == "admin":
        return True
    if account.role != "supervisor":
        return False
    return sees(hospitals, item.hospital_id, lead_hospital_id)


# Reading.


@dataclass(frozen=True)
class Loaded:
    """A round with what its view needs."""

    round: Round
    patients: list[RoundPatient]  # listed (not removed), in order
    session: RoundSession | None  # the active one, else today's, else None
    consults: dict[str, Consult]  # round patient id -> that session's consult


async def get(db: Database, round_id: str) -> Round:
    async with db.session() as session:
        item = await session.get(Round, round_id)
    if item is None:
        raise AppError("not_found", "no such round")
    return item


async def listed(db: Database, round_id: str) -> list[RoundPatient]:
    async with db.session() as session:
        result = await session.scalars(
            select(RoundPatient)
            .where(RoundPatient.round_id == round_id, RoundPatient.removed_at.is_(None))
            .order_by(RoundPatient.position, RoundPatient.added_at)
        )
        return list(result.all())


async def current_session(db: Database, round_id: str, today: date) -> RoundSession | None:
    """The session in progress, else today's (ended), else None."""
    async with db.session() as session:
        found = (
            await session.scalars(
                select(RoundSession).where(
                    RoundSession.round_id == round_id,
                    (RoundSession.status == "active") | (RoundSession.day == today),
                )
            )
        ).all()
    active = [s for s in found if s.status == "active"]
    return active[0] if active else (found[0] if found else None)


async def session_consults(db: Database, session_id: str) -> dict[str, Consult]:
    async with db.session() as session:
        result = await session.scalars(select(Consult).where(Consult.round_session_id == session_id))
        return {c.round_patient_id: c for c in result.all() if c.round_patient_id}


async def load(db: Database, round_id: str, now: datetime | None = None) -> Loaded:
    item = await get(db, round_id)
    current = await current_session(db, round_id, recurrence.day_of(now or utcnow()))
    found = await session_consults(db, current.id) if current else {}
    return Loaded(item, await listed(db, round_id), current, found)


async def lead_hospital(db: Database, item: Round) -> str | None:
    async with db.session() as session:
        lead = await session.get(User, item.lead_specialist_id)
    return lead.hospital_id if lead else None


async def readable(db: Database, account: Account, round_id: str) -> Round:
    """The round if `account` takes part in it or supervises it; `forbidden` otherwise."""
    item = await get(db, round_id)
    if takes_part(item, account):
        return item
    if account.role in ("supervisor", "admin") and supervises(
        item, account, await lead_hospital(db, item), await in_view(db, account)
    ):
        return item
    raise AppError("forbidden", "you do not take part in this round")


async def view(db: Database, loaded: Loaded, now: datetime | None = None) -> views.RoundView:
    """The contract's `round`."""
    item = loaded.round
    who = await consults.people(db, [item.lead_specialist_id, item.created_by, *(item.participant_ids or [])])
    async with db.session() as session:
        hospital = await session.get(Hospital, item.hospital_id)
    moment = now or utcnow()
    following = None
    if item.cancelled_at is None:
        # The occurrence under way counts as the next one until it is over.
        since = moment - timedelta(minutes=item.duration_min)
        following = recurrence.next_occurrence(item.starts_at, item.recurrence, item.until, item.skipped or [], since)
    where = views.hospital_ref(hospital.id, hospital.name, hospital.level) if hospital else None
    patients = [views.round_patient_view(p, loaded.consults.get(p.id)) for p in loaded.patients]
    return views.round_view(item, where, who, following, patients, views.round_session_view(loaded.session))


async def describe(db: Database, round_id: str, now: datetime | None = None) -> views.RoundView:
    return await view(db, await load(db, round_id, now), now)


async def visible(db: Database, account: Account) -> list[Round]:
    """Rounds `account` takes part in or supervises, cancelled ones included."""
    async with db.session() as session:
        rows = (await session.scalars(select(Round).order_by(Round.starts_at))).all()
        # Only the leads' hospitals (a supervisor's scope covers the lead's side too): every
        # connect reads this, and reading every user made a connect cost grow with the user count.
        leads = {r.lead_specialist_id for r in rows}
        hospital_of: dict[str, str] = {}
        if leads:
            found = await session.execute(select(User.id, User.hospital_id).where(User.id.in_(leads)))
            hospital_of = {user_id: hospital_id for user_id, hospital_id in found.all()}
    hospitals = await in_view(db, account) if account.role == "supervisor" else None
    return [
        r
        for r in rows
        if takes_part(r, account) or supervises(r, account, hospital_of.get(r.lead_specialist_id), hospitals)
    ]


def occurrences_of(item: Round, start: datetime, end: datetime) -> list[datetime]:
    """The occurrences in [start, end) that take place."""
    if item.cancelled_at is not None:
        return []
    return recurrence.occurrences(item.starts_at, item.recurrence, item.until, item.skipped or [], start, end)


def cancelled_occurrences_of(item: Round, start: datetime, end: datetime) -> list[datetime]:
    """The occurrences in [start, end) that were cancelled: the days cancelled one by one, or
    every one of a round cancelled as a whole."""
    planned = recurrence.occurrences(item.starts_at, item.recurrence, item.until, [], start, end)
    taking_place = set(occurrences_of(item, start, end))
    return [moment for moment in planned if moment not in taking_place]


# Writing the schedule.


@dataclass(frozen=True)
class Caps:
    """Settings ROUNDS_PER_HOSPITAL and ROUND_MAX_PATIENTS."""

    rounds: int
    patients: int


def caps_of(settings: Settings) -> Caps:
    return Caps(rounds=settings.rounds_per_hospital, patients=settings.round_max_patients)


async def lasting_at(db: Database, hospital_id: str, now: datetime) -> int:
    """The rounds of a hospital neither cancelled nor over: a series whose last day has not
    passed, or a single occurrence that has not ended."""
    today = recurrence.day_of(now)
    async with db.session() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(Round)
            .where(
                Round.hospital_id == hospital_id,
                Round.cancelled_at.is_(None),
                or_(
                    Round.recurrence.is_(None) & (Round.starts_at >= now - timedelta(minutes=MAX_DURATION_MIN)),
                    Round.recurrence.is_not(None) & (Round.until.is_(None) | (Round.until >= today)),
                ),
            )
        )
    return int(found or 0)


async def network_of(db: Database, hospital_id: str) -> set[str]:
    """The hospital and the hospitals linked to it as sisters, either way."""
    async with db.session() as session:
        links = await session.execute(
            select(SisterLink.upper_id, SisterLink.lower_id).where(
                (SisterLink.upper_id == hospital_id) | (SisterLink.lower_id == hospital_id)
            )
        )
        return {hospital_id, *(i for pair in links.all() for i in pair)}


async def _lead_status(db: Database, hospital_id: str, lead_id: str, named_by: str) -> lifecycle.LeadStatus:
    async with db.session() as session:
        lead = await session.get(User, lead_id)
    lead_hospital = lead.hospital_id if lead else None
    return (
        "pending"
        if lead_must_accept(lead_id, lead_hospital, named_by, await network_of(db, hospital_id))
        else "accepted"
    )


async def _check_people(db: Database, lead_id: str, participant_ids: list[str]) -> None:
    who = await consults.people(db, [lead_id, *participant_ids])
    if lead_id not in who or who[lead_id]["role"] != "specialist":
        raise AppError("invalid", "lead_specialist_id must be a specialist")
    for user_id in participant_ids:
        if user_id not in who or who[user_id]["role"] not in ("specialist", "clinician"):
            raise AppError("invalid", "participant_ids must be specialists or clinicians")


def _check_times(starts_at: datetime, rule: str | None, until: date | None, duration_min: int) -> None:
    if not 5 <= duration_min <= MAX_DURATION_MIN:
        raise AppError("invalid", f"duration_min must be between 5 and {MAX_DURATION_MIN}")
    if rule is None and until is not None:
        raise AppError("invalid", "until is for a daily or weekly round")
    if until is not None and until < recurrence.day_of(starts_at):
        raise AppError("invalid", "until must not be before the first occurrence")


async def create(
    db: Database,
    account: Account,
    *,
    title: str,
    hospital_id: str,
    ward: str,
    starts_at: datetime,
    duration_min: int,
    rule: str | None,
    until: date | None,
    lead_specialist_id: str,
    participant_ids: list[str],
    patients: list[dict[str, str]],
    caps: Caps,
) -> Round:
    async with db.session() as session:
        hospital = await session.get(Hospital, hospital_id)
    if hospital is None:
        raise AppError("not_found", "no such hospital")
    if not may_create(account, hospital_id, await consults.sister_hospitals(db, hospital_id)):
        raise AppError(
            "forbidden",
            "a round is scheduled by an admin, a clinician of the hospital or a specialist of its sister hospital",
        )
    _check_times(starts_at, rule, until, duration_min)
    await _check_people(db, lead_specialist_id, participant_ids)
    if len(patients) > caps.patients:
        raise AppError("too_large", f"a round lists at most {caps.patients} patients")
    if await lasting_at(db, hospital_id, utcnow()) >= caps.rounds:
        raise AppError(
            "too_large",
            f"a hospital has at most {caps.rounds} rounds scheduled (neither cancelled nor over); "
            "cancel one that is no longer held first",
        )
    item = Round(
        title=title,
        hospital_id=hospital_id,
        ward=ward,
        starts_at=starts_at,
        duration_min=duration_min,
        recurrence=rule,
        until=until,
        skipped=[],
        lead_specialist_id=lead_specialist_id,
        participant_ids=list(dict.fromkeys(participant_ids)),
        lead_status=await _lead_status(db, hospital_id, lead_specialist_id, account.id),
        created_by=account.id,
        created_at=utcnow(),
        version=1,
    )
    async with db.session() as session, session.begin():
        session.add(item)
        await session.flush()
        for position, patient in enumerate(patients, start=1):
            session.add(
                RoundPatient(
                    round_id=item.id,
                    position=position,
                    bed=patient["bed"],
                    ref=patient["ref"],
                    summary=patient.get("summary", ""),
                    added_by=account.id,
                    added_at=utcnow(),
                )
            )
    return item


async def _bump(db: Database, round_id: str, **changes: Any) -> None:
    async with db.session() as session, session.begin():
        await session.execute(update(Round).where(Round.id == round_id).values(**changes, version=Round.version + 1))


async def reschedule(db: Database, account: Account, round_id: str, changes: dict[str, Any]) -> Round:
    """Change the schedule: any of title, ward, starts_at, duration_min, recurrence, until,
    lead_specialist_id, participant_ids (absent keys stay as they are)."""
    item = await get(db, round_id)
    if not may_edit_schedule(item, account):
        raise AppError("forbidden", "you may not change this round's schedule")
    if item.cancelled_at is not None:
        raise AppError("conflict", "this round was cancelled")
    merged = {
        "starts_at": item.starts_at,
        "recurrence": item.recurrence,
        "until": item.until,
        "duration_min": item.duration_min,
        **changes,
    }
    _check_times(merged["starts_at"], merged["recurrence"], merged["until"], merged["duration_min"])
    if "lead_specialist_id" in changes or "participant_ids" in changes:
        await _check_people(
            db,
            changes.get("lead_specialist_id", item.lead_specialist_id),
            changes.get("participant_ids", item.participant_ids or []),
        )
    if "participant_ids" in changes:
        changes["participant_ids"] = list(dict.fromkeys(changes["participant_ids"]))
    if "lead_specialist_id" in changes and (
        changes["lead_specialist_id"] != item.lead_specialist_id or item.lead_status == "declined"
    ):
        # A new lead (or one who declined, named again) is asked afresh when of another network.
        changes["lead_status"] = await _lead_status(db, item.hospital_id, changes["lead_specialist_id"], account.id)
    await _bump(db, round_id, **changes)
    return await get(db, round_id)


async def answer_lead(db: Database, account: Account, round_id: str, accept: bool) -> Round:
    """The named lead accepts or declines a round they were asked to lead. Accepting an accepted
    round again changes nothing; a lead who accepted steps down by being replaced, not here."""
    item = await get(db, round_id)
    if account.id != item.lead_specialist_id:
        raise AppError("forbidden", "only the specialist named as this round's lead answers for it")
    if item.cancelled_at is not None:
        raise AppError("conflict", "this round was cancelled")
    wanted: lifecycle.LeadStatus = "accepted" if accept else "declined"
    if item.lead_status == wanted:
        return item
    if item.lead_status != "pending":
        raise AppError("conflict", f"this round's lead is already {item.lead_status}; ask its planners to change it")
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(Round)
            .where(Round.id == round_id, Round.lead_status == "pending", Round.lead_specialist_id == account.id)
            .values(lead_status=wanted, version=Round.version + 1)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise AppError("conflict", "this round changed meanwhile; look again")
    return await get(db, round_id)


async def lead_requests(db: Database, account: Account) -> list[views.LeadRequestView]:
    """The rounds `account` is asked to lead and has not answered, newest first (at most
    MAX_LEAD_REQUESTS): the schedule and who asks, without the patients."""
    if account.role != "specialist":
        return []
    async with db.session() as session:
        found = (
            await session.scalars(
                select(Round)
                .where(
                    Round.lead_specialist_id == account.id,
                    Round.lead_status == "pending",
                    Round.cancelled_at.is_(None),
                )
                .order_by(Round.created_at.desc())
                .limit(MAX_LEAD_REQUESTS)
            )
        ).all()
    return await request_views(db, list(found))


async def request_views(db: Database, found: list[Round]) -> list[views.LeadRequestView]:
    """`lead request`s: each round's schedule and who asks, without the patients."""
    async with db.session() as session:
        hospitals = {
            h.id: h.name
            for h in (
                await session.scalars(select(Hospital).where(Hospital.id.in_({r.hospital_id for r in found})))
            ).all()
        }
    who = await consults.people(db, [r.created_by for r in found])
    return [
        views.lead_request_view(r, views.hospital_name(r.hospital_id, hospitals.get(r.hospital_id, "")), who)
        for r in found
    ]


async def cancel(db: Database, account: Account, round_id: str, day: date | None) -> Round:
    """Cancel the whole round, or (with `day`) only that day's occurrence."""
    item = await get(db, round_id)
    if not may_edit_schedule(item, account):
        raise AppError("forbidden", "you may not cancel this round")
    if day is None:
        if item.cancelled_at is None:
            await _bump(db, round_id, cancelled_at=utcnow())
        return await get(db, round_id)
    if recurrence.occurrence_on(item.starts_at, item.recurrence, item.until, [], day) is None:
        raise AppError("not_found", "this round has no occurrence on that day")
    if day.isoformat() not in (item.skipped or []):
        await _bump(db, round_id, skipped=sorted([*(item.skipped or []), day.isoformat()]))
    return await get(db, round_id)


# Writing the patient list. Each change also reaches a session in progress.


async def _editable(db: Database, account: Account, round_id: str) -> Round:
    item = await get(db, round_id)
    if not may_edit_patients(item, account):
        raise AppError("forbidden", "the patient list is edited by the district team and the lead specialist")
    if item.cancelled_at is not None:
        raise AppError("conflict", "this round was cancelled")
    return item


async def add_patient(services: Services, account: Account, round_id: str, bed: str, ref: str, summary: str) -> None:
    item = await _editable(services.db, account, round_id)
    present = await listed(services.db, round_id)
    cap = services.settings.round_max_patients
    if len(present) >= cap:
        raise AppError("too_large", f"a round lists at most {cap} patients; remove one first")
    patient = RoundPatient(
        round_id=round_id,
        position=max((p.position for p in present), default=0) + 1,
        bed=bed,
        ref=ref,
        summary=summary,
        added_by=account.id,
        added_at=utcnow(),
    )
    async with services.db.session() as session, session.begin():
        session.add(patient)
    await _bump(services.db, round_id)
    current = await current_session(services.db, round_id, recurrence.day_of(utcnow()))
    if current is not None and current.status == "active":
        await _open_consult(services.db, item, current, patient)


async def _patient(db: Database, round_id: str, patient_id: str) -> RoundPatient:
    async with db.session() as session:
        patient = await session.get(RoundPatient, patient_id)
    if patient is None or patient.round_id != round_id or patient.removed_at is not None:
        raise AppError("not_found", "no such patient in this round")
    return patient


async def edit_patient(db: Database, account: Account, round_id: str, patient_id: str, changes: dict[str, str]) -> None:
    """Change bed, ref or summary; a consult already opened keeps the patient as it was then."""
    await _editable(db, account, round_id)
    await _patient(db, round_id, patient_id)
    async with db.session() as session, session.begin():
        await session.execute(update(RoundPatient).where(RoundPatient.id == patient_id).values(**changes))
    await _bump(db, round_id)


async def remove_patient(services: Services, account: Account, round_id: str, patient_id: str) -> None:
    """Off the list; a consult of the session in progress still without a decision is cancelled."""
    await _editable(services.db, account, round_id)
    await _patient(services.db, round_id, patient_id)
    async with services.db.session() as session, session.begin():
        await session.execute(update(RoundPatient).where(RoundPatient.id == patient_id).values(removed_at=utcnow()))
        await session.execute(
            update(RoundSession)
            .where(RoundSession.round_id == round_id, RoundSession.focus_patient_id == patient_id)
            .values(focus_patient_id=None, version=RoundSession.version + 1)
        )
    await _bump(services.db, round_id)
    current = await current_session(services.db, round_id, recurrence.day_of(utcnow()))
    if current is not None and current.status == "active":
        consult = (await session_consults(services.db, current.id)).get(patient_id)
        if consult is not None:
            await _close_undecided(services, consult, account.id, "removed from the round")


async def reorder(db: Database, account: Account, round_id: str, patient_ids: list[str]) -> None:
    """The listed patients in a new order: every listed patient exactly once."""
    await _editable(db, account, round_id)
    present = {p.id for p in await listed(db, round_id)}
    if len(patient_ids) != len(set(patient_ids)) or set(patient_ids) != present:
        raise AppError("invalid", "patient_ids must name every listed patient exactly once")
    async with db.session() as session, session.begin():
        for position, patient_id in enumerate(patient_ids, start=1):
            await session.execute(update(RoundPatient).where(RoundPatient.id == patient_id).values(position=position))
    await _bump(db, round_id)


# Sessions.


async def _open_consult(db: Database, item: Round, current: RoundSession, patient: RoundPatient) -> None:
    """The patient's consult for this session, once: the unique (session, patient) index settles races."""
    now = utcnow()
    specialties = await consults.specialties_of(db, item.lead_specialist_id)
    consult = Consult(
        kind="round",
        op_id=keys.round_patient_op(current.id, patient.id),
        status="active",
        specialty=specialties[0] if specialties else "internal",
        urgency="routine",
        patient={"ref": patient.ref, "summary": patient.summary, "bed": patient.bed},
        requester_id=patient.added_by,  # who put the patient on the list presents them
        hospital_id=item.hospital_id,
        specialist_id=item.lead_specialist_id,
        created_at=now,
        started_at=now,
        version=1,
        round_session_id=current.id,
        round_patient_id=patient.id,
    )
    try:
        async with db.session() as session, session.begin():
            session.add(consult)
            await session.flush()
            detail = {"round_id": item.id, "session_id": current.id, "bed": patient.bed}
            session.add(ConsultEvent(consult_id=consult.id, kind="round", actor_id=current.started_by, detail=detail))
    except IntegrityError:
        pass  # another instance opened it at the same moment


async def start(db: Database, account: Account, round_id: str, now: datetime) -> Loaded:
    """Today's session: the one in progress, or a new one for today's occurrence. Every listed
    patient has its consult afterwards. `conflict` when the round has no occurrence today."""
    item = await get(db, round_id)
    if not takes_part(item, account):
        raise AppError("forbidden", "you do not take part in this round")
    if item.lead_status != "accepted":
        raise AppError("conflict", f"the lead specialist has not accepted this round ({item.lead_status})")
    today = recurrence.day_of(now)
    current = await current_session(db, round_id, today)
    if current is None or current.status != "active":
        if item.cancelled_at is not None:
            raise AppError("conflict", "this round was cancelled")
        if current is not None:
            raise AppError("conflict", "today's session of this round has ended")
        occurrence = recurrence.occurrence_on(item.starts_at, item.recurrence, item.until, item.skipped or [], today)
        if occurrence is None:
            raise AppError("conflict", "this round has no session today")
        try:
            async with db.session() as session, session.begin():
                session.add(
                    RoundSession(
                        round_id=round_id, day=today, status="active", started_at=now, started_by=account.id, version=1
                    )
                )
        except IntegrityError:
            pass  # started on another instance at the same moment
        current = await current_session(db, round_id, today)
        assert current is not None
        if current.status != "active":
            raise AppError("conflict", "today's session of this round has ended")
    patients = await listed(db, round_id)
    opened = await session_consults(db, current.id)
    for patient in patients:
        if patient.id not in opened:
            await _open_consult(db, item, current, patient)
    return Loaded(item, patients, current, await session_consults(db, current.id))


async def focus(db: Database, account: Account, round_id: str, patient_id: str) -> None:
    item = await get(db, round_id)
    if not may_lead(item, account):
        raise AppError("forbidden", "the focus is moved by the lead and the invited specialists")
    current = await current_session(db, round_id, recurrence.day_of(utcnow()))
    lifecycle.check_session("focus", current.status if current else None)
    assert current is not None
    await _patient(db, round_id, patient_id)
    async with db.session() as session, session.begin():
        await session.execute(
            update(RoundSession)
            .where(RoundSession.id == current.id)
            .values(focus_patient_id=patient_id, version=RoundSession.version + 1)
        )


async def decide(services: Services, account: Account, consult: Consult, outcome: str, summary: str | None) -> Consult:
    """A round patient's decision (`consult:end` on their consult): by the lead or an invited
    specialist, who stays in the round's call for the next patient."""
    async with services.db.session() as session:
        held = await session.get(RoundSession, consult.round_session_id)
    if held is None:
        raise AppError("not_found", "no such round session")
    if not may_lead(await get(services.db, held.round_id), account):
        raise AppError("forbidden", "a round patient's decision is made by the lead or an invited specialist")
    return await dispatch.record_outcome(services, account.id, consult, outcome, summary, release_specialist=False)


async def _close_undecided(services: Services, consult: Consult, actor_id: str | None, reason: str) -> None:
    if not lifecycle.allows("close", consult.status):
        return  # decided already
    target = lifecycle.check_transition("close", consult.status)
    closed = await consults.transition(
        services.db, consult, "cancelled", actor_id, {"reason": reason}, status=target, ended_at=utcnow()
    )
    if closed is not None:
        await dispatch.announce(services, closed)


async def end(services: Services, account: Account | None, round_id: str) -> bool:
    """End the session in progress; `account` None when it ends on its own. False if none was."""
    item = await get(services.db, round_id)
    if account is not None and not may_lead(item, account):
        raise AppError("forbidden", "the session is ended by the lead and the invited specialists")
    async with services.db.session() as session:
        current = (
            await session.scalars(
                select(RoundSession).where(RoundSession.round_id == round_id, RoundSession.status == "active")
            )
        ).first()
    if current is None or not lifecycle.session_allows("end", current.status):
        return False
    sources, target = lifecycle.SESSION_TRANSITIONS["end"]
    async with services.db.session() as session, session.begin():
        result = await session.execute(
            update(RoundSession)
            .where(RoundSession.id == current.id, RoundSession.status.in_(sorted(sources)))
            .values(status=target, ended_at=utcnow(), version=RoundSession.version + 1)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False  # ended by someone else at the same moment
    actor = account.id if account else None
    for consult in (await session_consults(services.db, current.id)).values():
        await _close_undecided(services, consult, actor, "no decision in this session")
    return True


async def end_overdue(services: Services, now: datetime) -> list[str]:
    """End sessions with nobody in the call, `OVERRUN` after their scheduled end. Their round ids."""
    async with services.db.session() as session:
        rows = (
            await session.execute(
                select(RoundSession.round_id, RoundSession.started_at, Round.duration_min)
                .join(Round, Round.id == RoundSession.round_id)
                .where(RoundSession.status == "active")
            )
        ).all()
    ended = []
    for round_id, started_at, duration_min in rows:
        if started_at + timedelta(minutes=duration_min) + OVERRUN > now:
            continue
        if await services.rooms.peers(keys.round_room(round_id)):
            continue
        if await end(services, None, round_id):
            ended.append(round_id)
    return ended


async def team_of(db: Database, item: Round) -> set[str]:
    """Everyone taking part: lead, invited, creator, and the active clinicians of the hospital."""
    async with db.session() as session:
        clinicians = (
            await session.scalars(
                select(User.id).where(
                    User.role == "clinician", User.hospital_id == item.hospital_id, User.active.is_(True)
                )
            )
        ).all()
    lead = [item.lead_specialist_id] if item.lead_status == "accepted" else []
    return {*lead, item.created_by, *(item.participant_ids or []), *clinicians}


async def announce_starting(services: Services, now: datetime) -> list[str]:
    """`round:starting` to the people of each occurrence that started in `(now - STARTING_WINDOW, now]`,
    once across all instances (a Redis key per occurrence). Returns the round ids announced."""
    async with services.db.session() as session:
        rows = (await session.scalars(select(Round).where(Round.cancelled_at.is_(None)))).all()
    announced = []
    for item in rows:
        for moment in occurrences_of(item, now - STARTING_WINDOW, now + timedelta(microseconds=1)):
            key = keys.round_starting(item.id, recurrence.day_of(moment).isoformat())
            if not await services.redis.set(key, "1", nx=True, ex=2 * 24 * 3600):
                continue
            people = await team_of(services.db, item)
            payload = views.round_start(await describe(services.db, item.id, now), moment)
            await outbox.send(services, [Event("round:starting", payload, To.users(people))])
            announced.append(item.id)
    return announced


async def today_for(db: Database, account: Account, now: datetime) -> list[views.RoundStart]:
    """For `session:state`: the user's rounds with an occurrence today (Vietnam), each with its start."""
    if account.role not in ("specialist", "clinician"):
        return []
    today = recurrence.day_of(now)
    found = []
    for item in await visible(db, account):
        if item.cancelled_at is not None:
            continue
        moment = recurrence.occurrence_on(item.starts_at, item.recurrence, item.until, item.skipped or [], today)
        current = await current_session(db, item.id, today)
        if moment is None and current is None:
            continue
        found.append(views.round_start(await describe(db, item.id, now), moment))
    return found


async def publish(services: Services, round_id: str, skip_sid: str | None = None) -> views.RoundView:
    """`round:updated {round}` to every screen that lists the round: its team, on every device
    (whoever is in its call is of its team), but `skip_sid`; returns the round."""
    described = await describe(services.db, round_id)
    item = await get(services.db, round_id)
    # Everyone in its call is of its team (`round:join` admits its members only).
    audience = To.users(sorted(await team_of(services.db, item)))
    await outbox.send(services, [Event("round:updated", {"round": described}, audience, skip_sid=skip_sid)])
    return described


async def clock(services: Services, interval_s: float = 15.0) -> None:
    """Runs on every instance: `round:starting` notices, and sessions left open long after their end."""

    async def tick() -> None:
        now = utcnow()
        await announce_starting(services, now)
        for round_id in await end_overdue(services, now):
            await publish(services, round_id)

    await loops.every(interval_s, tick, "round notices")
