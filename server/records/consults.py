"""Consult records: creation, status changes with their timeline, and the consult as clients see it.

Every status change is a compare-and-set on `version` in the database, so when two instances
race (two accepts, an accept and an expiry, a cancel and an offer) exactly one change lands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.contract import views
from server.contract.errors import AppError
from server.live import keys
from server.live.caps import WAITING_STATUSES
from server.policy import lifecycle
from server.records import chain, consents
from server.records.models import (
    AuditEntry,
    Consult,
    ConsultEvent,
    Database,
    Hospital,
    SisterLink,
    User,
    new_id,
    utcnow,
)

OPEN_STATUSES = lifecycle.OPEN_STATUSES
VIETNAM = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh has no daylight saving


async def create(
    db: Database,
    *,
    op_id: str,
    requester_id: str,
    hospital_id: str,
    specialty: str,
    urgency: str,
    patient: dict[str, Any],
    named_specialist_id: str | None,
    kind: str = "consult",
    cap: Callable[[list[str]], AppError | None] | None = None,
    consent: consents.Given | None = None,
    consent_waived_reason: str | None = None,
) -> tuple[Consult, bool]:
    """Record a new request, or return the one this `op_id` already made. `(consult, created)`.

    `consent`: given with the request (a row of `consents` under the request's `op_id`, and a
    timeline line); `consent_waived_reason`: why an emergency goes ahead without it (a
    `consent_waived` timeline line). The rules for them are `policy.consent`'s.

    `cap`: given the urgencies of the requester's requests still waiting for an answer, why a
    new one is refused (raised), or None; a repeated `op_id` is answered before it is asked."""
    consult = Consult(
        kind=kind,
        op_id=op_id,
        status="queued",
        specialty=specialty,
        urgency=urgency,
        patient=patient,
        requester_id=requester_id,
        hospital_id=hospital_id,
        named_specialist_id=named_specialist_id,
        created_at=utcnow(),
        version=1,
        consent_waived_reason=consent_waived_reason,
    )
    try:
        # One session for the look-up and the insert: each session costs a connection's round trips.
        async with db.session() as session, session.begin():
            existing = await _by_op(session, requester_id, op_id)
            if existing is not None:
                return existing, False
            if cap is not None and (refused := cap(await _waiting_urgencies(session, requester_id))) is not None:
                raise refused
            consult.id = new_id()
            given = consents.row(consult.id, op_id, consent, requester_id) if consent is not None else None
            if given is not None:
                consult.consent = consents.current(given)
            session.add(consult)
            await session.flush()
            session.add(ConsultEvent(consult_id=consult.id, kind="requested", actor_id=requester_id, detail={}))
            if given is not None:
                session.add(given)
                session.add(consents.event(given, with_request=True))
                chain.append(
                    session, consents.CHAINED, "consent", given.id, chain.consent_content(given), actor_id=requester_id
                )
            if consent_waived_reason is not None:
                session.add(
                    ConsultEvent(
                        consult_id=consult.id,
                        kind="consent_waived",
                        actor_id=requester_id,
                        detail={"reason": consent_waived_reason},
                    )
                )
    except IntegrityError:
        # The same op arrived on another instance at the same moment; its write won.
        async with db.session() as session:
            raced = await _by_op(session, requester_id, op_id)
        if raced is None:
            raise
        return raced, False
    return consult, True


async def _waiting_urgencies(session: AsyncSession, requester_id: str) -> list[str]:
    """The urgencies of this clinician's consult requests waiting for an answer (queued or offered)."""
    result = await session.scalars(
        select(Consult.urgency).where(
            Consult.requester_id == requester_id,
            Consult.kind == "consult",
            Consult.status.in_(WAITING_STATUSES),
        )
    )
    return list(result.all())


async def _by_op(session: AsyncSession, requester_id: str, op_id: str) -> Consult | None:
    result = await session.scalars(select(Consult).where(Consult.requester_id == requester_id, Consult.op_id == op_id))
    return result.first()


async def ending_op(db: Database, consult_id: str) -> str | None:
    """The `op_id` of the `consult:end` that ended the consult, kept in its `ended` event; None
    when it ended without one (or has not ended)."""
    async with db.session() as session:
        detail = await session.scalar(
            select(ConsultEvent.detail)
            .where(ConsultEvent.consult_id == consult_id, ConsultEvent.kind == "ended")
            .order_by(ConsultEvent.id)
            .limit(1)
        )
    found = detail.get("op_id") if isinstance(detail, dict) else None
    return str(found) if found is not None else None


async def result_reported(db: Database, consult_id: str, op_id: str) -> bool:
    """Whether this `op_id` reported a result of the consult already (a `result` timeline line
    keeps its op_id, as an `ended` line keeps the ending's)."""
    async with db.session() as session:
        details = await session.scalars(
            select(ConsultEvent.detail).where(ConsultEvent.consult_id == consult_id, ConsultEvent.kind == "result")
        )
        return any(isinstance(d, dict) and d.get("op_id") == op_id for d in details.all())


async def report_result(
    db: Database,
    consult: Consult,
    actor_id: str,
    *,
    op_id: str,
    result: str,
    note: str,
    audit_entry: AuditEntry,
) -> Consult | None:
    """Keep the result on the consult (replacing an earlier one), a `result` line on its timeline
    and the audit entry, in one transaction, if nobody changed the consult since it was read;
    `None` if someone did."""
    async with db.session() as session, session.begin():
        changed: Consult | None = await session.scalar(
            update(Consult)
            .where(Consult.id == consult.id, Consult.version == consult.version)
            .values(
                result=result,
                result_note=note,
                result_by_id=actor_id,
                result_at=utcnow(),
                version=consult.version + 1,
            )
            .returning(Consult)
        )
        if changed is None:
            return None
        detail = {"result": result, "note": note, "op_id": op_id}
        session.add(ConsultEvent(consult_id=consult.id, kind="result", actor_id=actor_id, detail=detail))
        # A clinical write: chained with the digest of what was reported (never the note's text).
        chain.append(
            session,
            audit_entry.action,
            "consult",
            changed.id,
            chain.result_content(changed),
            actor_id=actor_id,
            address=audit_entry.address,
        )
    return changed


async def get(db: Database, consult_id: str) -> Consult | None:
    async with db.session() as session:
        return await session.get(Consult, consult_id)


async def transition(
    db: Database,
    consult: Consult,
    event: str,
    actor_id: str | None,
    detail: dict[str, Any] | None = None,
    **changes: Any,
) -> Consult | None:
    """Apply `changes` if nobody changed the consult since it was read; `None` if someone did."""
    async with db.session() as session, session.begin():
        changed: Consult | None = await session.scalar(
            update(Consult)
            .where(Consult.id == consult.id, Consult.version == consult.version)
            .values(**changes, version=consult.version + 1)
            .returning(Consult)
        )
        if changed is None:
            return None
        session.add(ConsultEvent(consult_id=consult.id, kind=event, actor_id=actor_id, detail=detail or {}))
        if "outcome" in changes and changed.outcome is not None:  # a clinical write: chained
            chain.append(
                session, "consult.end", "consult", changed.id, chain.outcome_content(changed), actor_id=actor_id
            )
    return changed


async def add_event(
    db: Database, consult_id: str, event: str, actor_id: str | None, detail: dict[str, Any] | None = None
) -> None:
    """A timeline line that changes no status (e.g. one of several emergency offers declined)."""
    async with db.session() as session, session.begin():
        session.add(ConsultEvent(consult_id=consult_id, kind=event, actor_id=actor_id, detail=detail or {}))


async def timeline(db: Database, consult_id: str) -> list[ConsultEvent]:
    async with db.session() as session:
        result = await session.scalars(
            select(ConsultEvent).where(ConsultEvent.consult_id == consult_id).order_by(ConsultEvent.id)
        )
        return list(result.all())


@dataclass(frozen=True)
class Answer:
    """What became of one offer of a consult that was not accepted: `declined` (with the reason)
    or `expired` (it lapsed unanswered), by whom, when. Read from the timeline."""

    kind: str
    user_id: str
    reason: str
    at: datetime


async def answers(db: Database, consult_ids: Iterable[str]) -> dict[str, list[Answer]]:
    """Each consult's declines and lapsed offers, oldest first (consults without any are absent)."""
    wanted = sorted(set(consult_ids))
    if not wanted:
        return {}
    async with db.session() as session:
        rows = await session.execute(
            select(
                ConsultEvent.consult_id, ConsultEvent.kind, ConsultEvent.actor_id, ConsultEvent.detail, ConsultEvent.at
            )
            .where(ConsultEvent.consult_id.in_(wanted), ConsultEvent.kind.in_(("declined", "expired")))
            .order_by(ConsultEvent.id)
        )
        found: dict[str, list[Answer]] = {}
        for consult_id, kind, actor_id, detail, at in rows:
            detail = detail if isinstance(detail, dict) else {}
            if kind == "declined" and actor_id:
                found.setdefault(consult_id, []).append(Answer(kind, actor_id, str(detail.get("reason") or ""), at))
            elif kind == "expired":
                for user_id in detail.get("to") or []:
                    found.setdefault(consult_id, []).append(Answer(kind, str(user_id), "", at))
        return found


def answer_people(found: Iterable[Answer]) -> set[str]:
    return {a.user_id for a in found}


async def open_for(db: Database, user_id: str) -> list[Consult]:
    """Queued, offered and active consults this user asked for or is the specialist of."""
    async with db.session() as session:
        result = await session.scalars(
            select(Consult)
            .where(
                Consult.status.in_(OPEN_STATUSES),
                or_(Consult.requester_id == user_id, Consult.specialist_id == user_id),
            )
            .order_by(Consult.created_at)
        )
        return list(result.all())


async def many(db: Database, ids: Iterable[str]) -> list[Consult]:
    wanted = list(ids)
    if not wanted:
        return []
    async with db.session() as session:
        result = await session.scalars(select(Consult).where(Consult.id.in_(wanted)))
        found = {c.id: c for c in result.all()}
    return [found[i] for i in wanted if i in found]


@dataclass(frozen=True)
class Rostered:
    """An active specialist on a specialty's roster, with their workload today."""

    user_id: str
    hospital_id: str
    specialties: tuple[str, ...]
    consults_today: int
    idle_since: datetime | None  # end of their last consult; None: never had one


async def roster(db: Database, specialty: str, hospital_id: str) -> tuple[list[Rostered], set[str]]:
    """What the matcher needs from the records for a request of `hospital_id`: the active
    specialists with this specialty and their workload, and the hospital's upper-level sisters.
    One session: on SQLite every session costs several round trips to the connection's thread."""
    async with db.session() as session:
        rows = await session.execute(
            select(User.id, User.hospital_id, User.specialties).where(User.role == "specialist", User.active.is_(True))
        )
        people = [
            (user_id, hospital, tuple(specialties))
            for user_id, hospital, specialties in rows
            if specialty in (specialties or ())
        ]
        load = await _workload(session, [user_id for user_id, _, _ in people])
        sisters = await _sister_hospitals(session, hospital_id)
    return [
        Rostered(user_id, hospital, specialties, *load.get(user_id, (0, None)))
        for user_id, hospital, specialties in people
    ], sisters


async def practitioners(db: Database, specialty: str) -> list[str]:
    """The active specialists who practise this specialty: whom the matcher may ever ask (it
    asks sister hospitals first, then every other hospital's roster)."""
    async with db.session() as session:
        rows = await session.execute(
            select(User.id, User.specialties).where(User.role == "specialist", User.active.is_(True))
        )
        return sorted(user_id for user_id, specialties in rows if specialty in (specialties or ()))


async def waiting_for(db: Database, specialties: Iterable[str]) -> list[Consult]:
    """Consult requests of these specialties still waiting for a specialist (queued or offered)."""
    wanted = sorted(set(specialties))
    if not wanted:
        return []
    async with db.session() as session:
        result = await session.scalars(
            select(Consult)
            .where(Consult.kind == "consult", Consult.status.in_(WAITING_STATUSES), Consult.specialty.in_(wanted))
            .order_by(Consult.created_at)
        )
        return list(result.all())


async def specialties_of(db: Database, user_id: str) -> list[str]:
    async with db.session() as session:
        user = await session.get(User, user_id)
        return list(user.specialties or []) if user is not None and user.role == "specialist" else []


async def sister_hospitals(db: Database, hospital_id: str) -> set[str]:
    """The upper-level hospitals paired with this one."""
    async with db.session() as session:
        return await _sister_hospitals(session, hospital_id)


async def networks(db: Database, hospital_ids: Iterable[str]) -> set[str]:
    """The hospitals given and every hospital sister-linked to one of them, upper or lower:
    whom the people of a consult between them may call in."""
    wanted = set(hospital_ids)
    async with db.session() as session:
        rows = await session.execute(
            select(SisterLink.upper_id, SisterLink.lower_id).where(
                or_(SisterLink.upper_id.in_(wanted), SisterLink.lower_id.in_(wanted))
            )
        )
        return wanted | {hospital for row in rows for hospital in row}


async def _sister_hospitals(session: AsyncSession, hospital_id: str) -> set[str]:
    result = await session.scalars(select(SisterLink.upper_id).where(SisterLink.lower_id == hospital_id))
    return set(result.all())


async def _workload(session: AsyncSession, specialist_ids: Sequence[str]) -> dict[str, tuple[int, datetime | None]]:
    """For each specialist: consults accepted today (Vietnam time) and when their last one ended."""
    if not specialist_ids:
        return {}
    today = datetime.now(VIETNAM).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = await session.execute(
        select(
            Consult.specialist_id,
            func.count().filter(Consult.started_at >= today),
            func.max(Consult.ended_at),
        )
        .where(Consult.specialist_id.in_(list(specialist_ids)))
        .group_by(Consult.specialist_id)
    )
    load: dict[str, tuple[int, datetime | None]] = {}
    for specialist_id, count, last_end in rows:
        if isinstance(last_end, str):  # SQLite aggregates lose the column type
            last_end = datetime.fromisoformat(last_end)
        if last_end is not None and last_end.tzinfo is None:
            last_end = last_end.replace(tzinfo=UTC)
        if specialist_id is not None:
            load[specialist_id] = (int(count), last_end)
    return load


async def people(db: Database, user_ids: Iterable[str | None]) -> dict[str, views.Person]:
    """`{id, name, role, hospital: {id, name, level}}` for each user id given."""
    wanted = {i for i in user_ids if i}
    if not wanted:
        return {}
    async with db.session() as session:
        rows = await session.execute(
            select(User, Hospital).join(Hospital, User.hospital_id == Hospital.id).where(User.id.in_(wanted))
        )
        return {
            user.id: views.person(
                user.id, user.name, user.role, views.hospital_ref(hospital.id, hospital.name, hospital.level)
            )
            for user, hospital in rows
        }


def may_join(consult: Consult, user_id: str, role: str, hospital_id: str, invited: bool) -> bool:
    """Who may be in a consult's call: the requester, the accepted specialist, the clinicians
    of the requesting hospital (the district team) and whoever the requester or the specialist invited."""
    return (
        user_id in (consult.requester_id, consult.specialist_id)
        or (role == "clinician" and hospital_id == consult.hospital_id)
        or invited
    )


def involved(consult: Consult) -> set[str]:
    """Users whose screens show this consult, as the ids of their `user:<id>` Socket.IO rooms;
    for a round patient's consult also the round's call (`keys.round_audience`)."""
    found = {i for i in (consult.requester_id, consult.specialist_id) if i}
    if consult.round_session_id:
        found.add(keys.round_audience(consult.round_session_id))
    return found
