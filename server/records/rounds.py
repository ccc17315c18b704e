"""Ward rounds in the database: the schedule (`Round`), its patient list (`RoundPatient`), the
sessions held (`RoundSession`) and each session's round consults. Reads and writes only; who may
do what is `server/policy/rounds.py`'s, the commands `server/actions/rounds.py`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from server.contract.errors import AppError
from server.live import keys
from server.policy import recurrence
from server.policy.lifecycle import SESSION_TRANSITIONS, LeadStatus
from server.policy.rounds import MAX_DURATION_MIN, supervises, takes_part
from server.records import consents, consults
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

MAX_LEAD_REQUESTS = 50  # the pending lead requests one specialist is shown, newest first


@dataclass(frozen=True)
class Loaded:
    """A round with what its view needs."""

    round: Round
    patients: list[RoundPatient]  # listed (not removed), in order
    session: RoundSession | None  # the active one, else today's, else None
    consults: dict[str, Consult]  # round patient id -> that session's consult


# Reading.


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


async def patient(db: Database, round_id: str, patient_id: str) -> RoundPatient:
    """A listed patient of the round; `not_found` otherwise."""
    async with db.session() as session:
        found = await session.get(RoundPatient, patient_id)
    if found is None or found.round_id != round_id or found.removed_at is not None:
        raise AppError("not_found", "no such patient in this round")
    return found


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


async def active_session(db: Database, round_id: str) -> RoundSession | None:
    async with db.session() as session:
        return (
            await session.scalars(
                select(RoundSession).where(RoundSession.round_id == round_id, RoundSession.status == "active")
            )
        ).first()


async def session_of(db: Database, session_id: str | None) -> RoundSession | None:
    async with db.session() as session:
        return await session.get(RoundSession, session_id)


async def active_sessions(db: Database) -> list[tuple[str, datetime, int]]:
    """Every session in progress: its round id, when it started, the round's duration in minutes."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(RoundSession.round_id, RoundSession.started_at, Round.duration_min)
                .join(Round, Round.id == RoundSession.round_id)
                .where(RoundSession.status == "active")
            )
        ).all()
    return [(round_id, started_at, duration_min) for round_id, started_at, duration_min in rows]


async def session_consults(db: Database, session_id: str) -> dict[str, Consult]:
    async with db.session() as session:
        result = await session.scalars(select(Consult).where(Consult.round_session_id == session_id))
        return {c.round_patient_id: c for c in result.all() if c.round_patient_id}


async def load(db: Database, round_id: str, now: datetime | None = None) -> Loaded:
    item = await get(db, round_id)
    current = await current_session(db, round_id, recurrence.day_of(now or utcnow()))
    found = await session_consults(db, current.id) if current else {}
    return Loaded(item, await listed(db, round_id), current, found)


async def hospital_of(db: Database, user_id: str) -> str | None:
    """The user's hospital; None for no such user."""
    async with db.session() as session:
        user = await session.get(User, user_id)
    return user.hospital_id if user else None


async def lead_hospital(db: Database, item: Round) -> str | None:
    return await hospital_of(db, item.lead_specialist_id)


async def hospital(db: Database, hospital_id: str) -> Hospital | None:
    async with db.session() as session:
        return await session.get(Hospital, hospital_id)


async def hospital_names(db: Database, hospital_ids: set[str]) -> dict[str, str]:
    async with db.session() as session:
        found = (await session.scalars(select(Hospital).where(Hospital.id.in_(hospital_ids)))).all()
    return {h.id: h.name for h in found}


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


async def not_cancelled(db: Database) -> list[Round]:
    async with db.session() as session:
        return list((await session.scalars(select(Round).where(Round.cancelled_at.is_(None)))).all())


async def pending_leads(db: Database, lead_id: str) -> list[Round]:
    """The rounds `lead_id` is asked to lead and has not answered, newest first (at most MAX_LEAD_REQUESTS)."""
    async with db.session() as session:
        found = (
            await session.scalars(
                select(Round)
                .where(
                    Round.lead_specialist_id == lead_id,
                    Round.lead_status == "pending",
                    Round.cancelled_at.is_(None),
                )
                .order_by(Round.created_at.desc())
                .limit(MAX_LEAD_REQUESTS)
            )
        ).all()
    return list(found)


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


async def clinicians_of(db: Database, hospital_id: str) -> list[str]:
    """The active clinicians of a hospital (a round's district team)."""
    async with db.session() as session:
        return list(
            (
                await session.scalars(
                    select(User.id).where(
                        User.role == "clinician", User.hospital_id == hospital_id, User.active.is_(True)
                    )
                )
            ).all()
        )


# Writing.


async def insert(db: Database, item: Round, patients: list[dict[str, Any]], added_by: str) -> Round:
    """The round and its first patients, in that order, in one transaction."""
    async with db.session() as session, session.begin():
        session.add(item)
        await session.flush()
        for position, listed_patient in enumerate(patients, start=1):
            session.add(
                RoundPatient(
                    round_id=item.id,
                    position=position,
                    bed=listed_patient["bed"],
                    ref=listed_patient["ref"],
                    summary=listed_patient.get("summary", ""),
                    identity=listed_patient.get("identity") or None,
                    consent=listed_patient.get("consent"),
                    added_by=added_by,
                    added_at=utcnow(),
                )
            )
    return item


async def bump(db: Database, round_id: str, **changes: Any) -> None:
    """Change the round's columns and its version."""
    async with db.session() as session, session.begin():
        await session.execute(update(Round).where(Round.id == round_id).values(**changes, version=Round.version + 1))


async def answer_lead(db: Database, round_id: str, lead_id: str, wanted: LeadStatus) -> bool:
    """A pending lead's answer, compare-and-set: False when the round changed meanwhile."""
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(Round)
            .where(Round.id == round_id, Round.lead_status == "pending", Round.lead_specialist_id == lead_id)
            .values(lead_status=wanted, version=Round.version + 1)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def add_patient(db: Database, item: RoundPatient) -> None:
    async with db.session() as session, session.begin():
        session.add(item)


async def set_identity(db: Database, consult_id: str, identity: dict[str, str]) -> None:
    """The identity given on the list, onto the listed patient's consult of the session under way
    (its bed, reference and summary stay as they were when it opened)."""
    async with db.session() as session, session.begin():
        consult = await session.get(Consult, consult_id)
        if consult is not None:
            consult.patient = {**consult.patient, **identity}


async def edit_patient(db: Database, patient_id: str, changes: dict[str, Any]) -> None:
    async with db.session() as session, session.begin():
        await session.execute(update(RoundPatient).where(RoundPatient.id == patient_id).values(**changes))


async def remove_patient(db: Database, round_id: str, patient_id: str) -> None:
    """Off the list, and out of the focus of the round's sessions."""
    async with db.session() as session, session.begin():
        await session.execute(update(RoundPatient).where(RoundPatient.id == patient_id).values(removed_at=utcnow()))
        await session.execute(
            update(RoundSession)
            .where(RoundSession.round_id == round_id, RoundSession.focus_patient_id == patient_id)
            .values(focus_patient_id=None, version=RoundSession.version + 1)
        )


async def reorder(db: Database, patient_ids: list[str]) -> None:
    async with db.session() as session, session.begin():
        for position, patient_id in enumerate(patient_ids, start=1):
            await session.execute(update(RoundPatient).where(RoundPatient.id == patient_id).values(position=position))


async def open_consult(db: Database, item: Round, current: RoundSession, listed_patient: RoundPatient) -> None:
    """The patient's consult for this session, once: the unique (session, patient) index settles races."""
    now = utcnow()
    specialties = await consults.specialties_of(db, item.lead_specialist_id)
    consult = Consult(
        kind="round",
        op_id=keys.round_patient_op(current.id, listed_patient.id),
        status="active",
        specialty=specialties[0] if specialties else "internal",
        urgency="routine",
        patient={
            **(listed_patient.identity or {}),
            "ref": listed_patient.ref,
            "summary": listed_patient.summary,
            "bed": listed_patient.bed,
        },
        requester_id=listed_patient.added_by,  # who put the patient on the list presents them
        hospital_id=item.hospital_id,
        specialist_id=item.lead_specialist_id,
        created_at=now,
        started_at=now,
        version=1,
        round_session_id=current.id,
        round_patient_id=listed_patient.id,
    )
    try:
        async with db.session() as session, session.begin():
            session.add(consult)
            await session.flush()
            detail = {"round_id": item.id, "session_id": current.id, "bed": listed_patient.bed}
            session.add(ConsultEvent(consult_id=consult.id, kind="round", actor_id=current.started_by, detail=detail))
            if listed_patient.consent:
                consents.copy_onto(session, consult, consult.op_id, listed_patient.consent)
    except IntegrityError:
        pass  # another instance opened it at the same moment


async def open_session(db: Database, round_id: str, today: date, now: datetime, started_by: str) -> None:
    """Today's session, once: the unique (round, day) index settles races."""
    try:
        async with db.session() as session, session.begin():
            session.add(
                RoundSession(
                    round_id=round_id, day=today, status="active", started_at=now, started_by=started_by, version=1
                )
            )
    except IntegrityError:
        pass  # started on another instance at the same moment


async def set_focus(db: Database, session_id: str, patient_id: str) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(RoundSession)
            .where(RoundSession.id == session_id)
            .values(focus_patient_id=patient_id, version=RoundSession.version + 1)
        )


async def end_session(db: Database, session_id: str) -> bool:
    """The session's `end` transition, compare-and-set: False when it was ended meanwhile."""
    sources, target = SESSION_TRANSITIONS["end"]
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(RoundSession)
            .where(RoundSession.id == session_id, RoundSession.status.in_(sorted(sources)))
            .values(status=target, ended_at=utcnow(), version=RoundSession.version + 1)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
