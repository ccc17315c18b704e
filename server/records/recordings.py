"""Recordings in the database: one row per segment, its start and end on the consult's timeline
and in the audit log, its end chained (server/records/chain.py: a `Witness` with its SHA-256).

A segment's end is a compare-and-set on `state = 'recording'`: of an instance stopping it and
another finding its instance dead, exactly one writes the end."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from server.records import audit, chain
from server.records.models import ConsultEvent, Database, Hospital, Recording, utcnow

ENDINGS = {"stopped": "recording.stop", "failed": "recording.fail"}
TIMELINE = {"recording": "recording_started", "stopped": "recording_stopped", "failed": "recording_failed"}


def retain_until(moment: datetime, years: int) -> datetime:
    """`years` after `moment`, on the same day (29 February: the 28th)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


async def create(
    db: Database,
    recording_id: str,
    *,
    consult_id: str | None,
    round_id: str | None,
    segment: int,
    started_by: str,
    path: str,
    retention_years: int,
    address: str = "",
    reason: str = "",
) -> Recording:
    """A segment begins. `reason`: why, when nobody asked (a hospital that records its consults)."""
    now = utcnow()
    row = Recording(
        id=recording_id,
        consult_id=consult_id,
        round_id=round_id,
        segment=segment,
        state="recording",
        started_at=now,
        started_by=started_by,
        path=path,
        retain_until=retain_until(now, retention_years),
        legal_hold=False,
    )
    async with db.session() as session, session.begin():
        session.add(row)
        await session.flush()
        if consult_id is not None:
            session.add(_line(row, "recording", started_by, reason))
        about = f"{_about(row)} {reason}" if reason else _about(row)
        session.add(audit.entry(started_by, "recording.start", "recording", row.id, address, about))
    return row


async def finish(
    db: Database,
    recording_id: str,
    state: str,
    *,
    sha256: str | None,
    size: int | None,
    duration_s: float,
    actor_id: str | None,
    retention_years: int,
    reason: str = "",
    address: str = "",
) -> Recording | None:
    """End a segment (`stopped` or `failed`, with why) with its file; None if it had ended already."""
    now = utcnow()
    async with db.session() as session, session.begin():
        row = await session.get(Recording, recording_id)
        if row is None or row.state != "recording":
            return None
        done = await session.execute(
            update(Recording)
            .where(Recording.id == recording_id, Recording.state == "recording")
            .values(
                state=state,
                stopped_at=now,
                sha256=sha256,
                bytes=size,
                duration_s=duration_s,
                path=None,
                retain_until=retain_until(now, retention_years),
            )
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return None
        await session.refresh(row)
        if row.consult_id is not None:
            session.add(_line(row, state, actor_id, reason))
        chain.append(
            session,
            ENDINGS[state],
            "recording",
            row.id,
            chain.recording_content(row),
            actor_id=actor_id,
            address=address,
        )
    return row


def _about(row: Recording) -> str:
    return f"consult={row.consult_id}" if row.consult_id else f"round={row.round_id}"


def _line(row: Recording, state: str, actor_id: str | None, reason: str = "") -> ConsultEvent:
    detail: dict[str, object] = {"recording_id": row.id, "segment": row.segment}
    if state != "recording":
        detail.update(duration_s=row.duration_s, bytes=row.bytes, sha256=row.sha256, reason=reason)
    elif reason:
        detail.update(reason=reason)
    assert row.consult_id is not None
    return ConsultEvent(consult_id=row.consult_id, kind=TIMELINE[state], actor_id=actor_id, detail=detail)


async def get(db: Database, recording_id: str) -> Recording | None:
    async with db.session() as session:
        return await session.get(Recording, recording_id)


async def of_call(db: Database, *, consult_id: str | None = None, round_id: str | None = None) -> list[Recording]:
    """A consult's or a round's recordings, in the order they were made (segments in order)."""
    column = Recording.consult_id if consult_id is not None else Recording.round_id
    async with db.session() as session:
        found = await session.scalars(
            select(Recording)
            .where(column == (consult_id or round_id), Recording.deleted_at.is_(None))
            .order_by(Recording.started_at, Recording.segment)
        )
        return list(found.all())


async def unfinished(db: Database) -> list[Recording]:
    async with db.session() as session:
        found = await session.scalars(select(Recording).where(Recording.state == "recording").limit(1000))
        return list(found.all())


async def past_retention(db: Database, now: datetime) -> list[Recording]:
    """Recordings that may be deleted: ended, past `retain_until`, under no legal hold, not deleted."""
    async with db.session() as session:
        found = await session.scalars(
            select(Recording)
            .where(
                Recording.state != "recording",
                Recording.retain_until < now,
                Recording.legal_hold.is_(False),
                Recording.deleted_at.is_(None),
            )
            .order_by(Recording.retain_until)
        )
        return list(found.all())


async def mark_deleted(db: Database, recording_id: str, actor_id: str | None, address: str = "") -> None:
    async with db.session() as session, session.begin():
        await session.execute(update(Recording).where(Recording.id == recording_id).values(deleted_at=utcnow()))
        session.add(audit.entry(actor_id, "recording.delete", "recording", recording_id, address))


async def set_hold(db: Database, recording_id: str, hold: bool) -> None:
    async with db.session() as session, session.begin():
        await session.execute(update(Recording).where(Recording.id == recording_id).values(legal_hold=hold))


async def records_consults(db: Database, hospital_id: str) -> bool:
    """Whether this hospital has its consults recorded by themselves (set by an admin)."""
    async with db.session() as session:
        hospital = await session.get(Hospital, hospital_id)
    return hospital is not None and bool(hospital.record_consults)
