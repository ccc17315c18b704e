"""The patient's consent to a consult: each consent given or withdrawn is a row of `consents`
(append-only, one per `op_id`: a repeated op writes nothing twice), a line of the consult's
timeline, and the consult's current `consent`, all in one transaction.

Recording consent does not change the consult's `version`: that counts status changes, and a
live offer is only good for the version it was made for (a consent recorded while the request
is offered must not void the offer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.contract.validation import Consent
from server.contract.views import iso
from server.records import chain
from server.records.models import ConsentRecord, Consult, ConsultEvent, Database, new_id, utcnow

# The chained audit entry of each consent recorded (server/records/chain.py): the digest of what
# was recorded, so a consent changed in the database is found by `verify-audit`.
CHAINED = "consent.record"


@dataclass(frozen=True)
class Given:
    """A consent as a client gives it (the contract's `consult:consent` without its ids)."""

    given_by: str
    method: str
    scopes: list[str]
    relation: str | None = None
    note: str | None = None


def given(consent: Consent) -> Given:
    """The contract's consent (a validated payload) as recorded."""
    return Given(
        given_by=consent.given_by,
        method=consent.method,
        scopes=list(consent.scopes),
        relation=consent.relation,
        note=consent.note,
    )


def row(consult_id: str, op_id: str, given: Given, recorded_by: str) -> ConsentRecord:
    return ConsentRecord(
        id=new_id(),
        consult_id=consult_id,
        op_id=op_id,
        given_by=given.given_by,
        relation=given.relation,
        method=given.method,
        scopes=list(given.scopes),
        note=given.note,
        recorded_by=recorded_by,
        recorded_at=utcnow(),
    )


def kept(given: Given, recorded_by: str) -> dict[str, Any]:
    """A consent as kept outside a consult (a ward round's listed patient), shaped as `current`."""
    return {
        "given_by": given.given_by,
        "relation": given.relation,
        "method": given.method,
        "scopes": list(given.scopes),
        "note": given.note,
        "recorded_by": recorded_by,
        "recorded_at": iso(utcnow()),
    }


def copy_onto(session: AsyncSession, consult: Consult, op_id: str, kept_consent: dict[str, Any]) -> None:
    """A consent kept on a ward round's listed patient, recorded on the consult a session opens
    for them (in the caller's transaction) as it was given: same recorder, same time; a line of
    the consult's timeline and of the chained audit like any consent."""
    given = Given(
        given_by=str(kept_consent["given_by"]),
        method=str(kept_consent["method"]),
        scopes=list(kept_consent.get("scopes") or []),
        relation=kept_consent.get("relation"),
        note=kept_consent.get("note"),
    )
    recorded_by = str(kept_consent["recorded_by"])
    made = row(consult.id, op_id, given, recorded_by)
    made.recorded_at = datetime.fromisoformat(str(kept_consent["recorded_at"]))
    session.add(made)
    consult.consent = current(made)
    session.add(event(made))
    chain.append(session, CHAINED, "consent", made.id, chain.consent_content(made), actor_id=recorded_by)


def current(record: ConsentRecord) -> dict[str, Any]:
    """What the consult keeps as its `consent` (`recorded_by` a user id; the view names them)."""
    return {
        "given_by": record.given_by,
        "relation": record.relation,
        "method": record.method,
        "scopes": list(record.scopes),
        "note": record.note,
        "recorded_by": record.recorded_by,
        "recorded_at": iso(record.recorded_at),
    }


def event(record: ConsentRecord, *, with_request: bool = False) -> ConsultEvent:
    """The timeline's line: `consent` (given or changed) or `consent_withdrawn`; never the note."""
    detail: dict[str, Any] = {
        "op_id": record.op_id,
        "given_by": record.given_by,
        "relation": record.relation,
        "method": record.method,
        "scopes": list(record.scopes),
    }
    if with_request:
        detail["with_request"] = True
    kind = "consent" if record.scopes else "consent_withdrawn"
    return ConsultEvent(consult_id=record.consult_id, kind=kind, actor_id=record.recorded_by, detail=detail)


async def record(db: Database, consult_id: str, op_id: str, given: Given, recorded_by: str) -> tuple[Consult, bool]:
    """Record a consent (or its withdrawal) for the consult; `(consult, created)`, `created`
    False when this `op_id` had recorded it already (nothing is written again)."""
    try:
        async with db.session() as session, session.begin():
            if await _by_op(session, consult_id, op_id) is None:
                made = row(consult_id, op_id, given, recorded_by)
                session.add(made)
                await session.flush()
                await session.execute(update(Consult).where(Consult.id == consult_id).values(consent=current(made)))
                session.add(event(made))
                chain.append(session, CHAINED, "consent", made.id, chain.consent_content(made), actor_id=recorded_by)
                created = True
            else:
                created = False
    except IntegrityError:
        # The same op arrived on another instance at the same moment; its write won.
        created = False
    async with db.session() as session:
        consult = await session.get(Consult, consult_id)
    assert consult is not None
    return consult, created


async def history(db: Database, consult_id: str) -> list[ConsentRecord]:
    """Every consent given or withdrawn for the consult, oldest first."""
    async with db.session() as session:
        found = await session.scalars(
            select(ConsentRecord).where(ConsentRecord.consult_id == consult_id).order_by(ConsentRecord.recorded_at)
        )
        return list(found.all())


async def _by_op(session: AsyncSession, consult_id: str, op_id: str) -> ConsentRecord | None:
    found = await session.scalars(
        select(ConsentRecord).where(ConsentRecord.consult_id == consult_id, ConsentRecord.op_id == op_id)
    )
    return found.first()
