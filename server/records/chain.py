"""The tamper-evident audit chain: one global chain through the audit table.

Every audit entry carries `seq` (its place: 1, 2, 3, ...), `prev_hash` (the hash of entry
`seq - 1`; 64 zeros for the first) and `hash` = SHA-256 of the canonical JSON of
`[prev_hash, {seq, id, at, actor_id, action, target_type, target_id, address, detail}]`.
Changing an entry breaks its own hash; removing one breaks the next entry's `prev_hash`; removing
the last ones leaves the chain short of its head (`audit_chain_head`, one row).

Clinical rows are vouched for through the chain: each clinical write adds, in its own
transaction, an audit entry (by `append`) whose detail is `sha256=<SHA-256 of the row's
content>`. Changing a note's text then no longer matches its chained entry, and a clinical row
with no chained entry is reported too. What counts as clinical, and what a row's content is, is
`WITNESSES` below: a new kind of clinical record (consent, result, signature of the minutes) appends with its
action and adds itself there.

Appending: every new `AuditEntry`, however it was added to a session, is chained as the session
flushes it (`_chain_new_entries`). The first statement of that is an `UPDATE` of the head row:
a row lock on PostgreSQL, the database's write lock on SQLite, held to the end of the
transaction, so writers on every instance take turns and the chain never forks (the unique
`seq` would refuse a fork anyway). An entry is best added last in its transaction: the head is
then taken last, and held only while the transaction commits.

`python -m server verify-audit` runs `verify`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from server.records.models import (
    AuditEntry,
    ChainHead,
    ConsentRecord,
    Consult,
    Database,
    MinutesSignature,
    Note,
    Recording,
    new_id,
    utcnow,
)

GENESIS = "0" * 64
BATCH = 2000  # rows read at a time by the walk
HEAD_ID = 1
DIGEST = "sha256="


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    raise TypeError(f"not part of a chained content: {type(value).__name__}")


def canonical(value: object) -> bytes:
    """One encoding for one value: sorted keys, no spaces, UTF-8, times as UTC ISO 8601 with microseconds."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain).encode()


def content_hash(content: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical(dict(content))).hexdigest()


class EntryFields(Protocol):
    seq: int
    id: str
    at: datetime
    actor_id: str | None
    action: str
    target_type: str
    target_id: str
    address: str
    detail: str


def entry_hash(prev_hash: str, entry: Any) -> str:
    """`entry`: an `AuditEntry`, a row of the audit table, or anything with its fields."""
    own = {
        "seq": entry.seq,
        "id": entry.id,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "address": entry.address,
        "detail": entry.detail,
    }
    return hashlib.sha256(canonical([prev_hash, own])).hexdigest()


def append(
    session: AsyncSession | Session,
    kind: str,
    target_type: str,
    target_id: str,
    content: Mapping[str, object],
    *,
    actor_id: str | None,
    address: str = "",
) -> AuditEntry:
    """Chain a clinical write: an audit entry `kind` about `target_type`/`target_id` whose detail
    is the SHA-256 of `content` (the row as `WITNESSES` reads it back). Add it in the session
    that writes the row, so both stand or fall together; it is chained as the session flushes."""
    entry = AuditEntry(
        id=new_id(),
        at=utcnow(),
        actor_id=actor_id,
        action=kind,
        target_type=target_type,
        target_id=target_id,
        address=address[:100],
        detail=DIGEST + content_hash(content),
    )
    session.add(entry)
    return entry


@event.listens_for(Session, "before_flush")
def _chain_new_entries(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    new = [obj for obj in session.new if isinstance(obj, AuditEntry)]
    if not new:
        return
    connection = session.connection()
    last_seq, prev = connection.execute(
        update(ChainHead)
        .where(ChainHead.id == HEAD_ID)
        .values(seq=ChainHead.seq + len(new))
        .returning(ChainHead.seq, ChainHead.hash)
    ).one()
    seq = last_seq - len(new)
    for entry in new:
        seq += 1
        entry.id = entry.id or new_id()
        entry.at = entry.at or utcnow()
        entry.target_type = entry.target_type or ""
        entry.target_id = entry.target_id or ""
        entry.address = entry.address or ""
        entry.detail = entry.detail or ""
        entry.seq = seq
        entry.prev_hash = prev
        entry.hash = prev = entry_hash(prev, entry)
    connection.execute(update(ChainHead).where(ChainHead.id == HEAD_ID).values(hash=prev))


# What the chain vouches for ------------------------------------------------------------------


def note_content(note: Any) -> dict[str, object]:
    """A note or an amendment as chained: everything it says and who said it when."""
    return {
        "id": note.id,
        "consult_id": note.consult_id,
        "seq": note.seq,
        "section": note.section,
        "text": note.text,
        "author_id": note.author_id,
        "created_at": note.created_at,
        "amends": note.amends,
    }


def note_action(note: Any) -> str:
    return "note.amend" if note.amends else "note.add"


def outcome_content(consult: Any) -> dict[str, object]:
    """A consult's end as chained: its outcome and summary, who ended it and when."""
    return {
        "id": consult.id,
        "outcome": consult.outcome,
        "summary": consult.summary,
        "ended_at": consult.ended_at,
        "ended_by_id": consult.ended_by_id,
    }


def result_content(consult: Any) -> dict[str, object]:
    """The result reported back (`consult:result`) as chained: what became of the patient, the
    note, who reported it and when. A later report replaces it and is chained in turn."""
    return {
        "id": consult.id,
        "result": consult.result,
        "note": consult.result_note,
        "reported_by_id": consult.result_by_id,
        "reported_at": consult.result_at,
    }


def consent_content(record: Any) -> dict[str, object]:
    """A consent recorded (or withdrawn: no scopes) as chained: who gave it, how, for what, who
    recorded it and when. Consents are append-only: each one is chained once."""
    return {
        "id": record.id,
        "consult_id": record.consult_id,
        "given_by": record.given_by,
        "relation": record.relation,
        "method": record.method,
        "scopes": list(record.scopes),
        "note": record.note,
        "recorded_by": record.recorded_by,
        "recorded_at": record.recorded_at,
    }


def signature_content(row: Any) -> dict[str, object]:
    """A signature on the minutes as chained: who signed which version in what role, when, the
    PDF signed and the PDF it made (SHA-256 of each, both in the blob store)."""
    return {
        "id": row.id,
        "consult_id": row.consult_id,
        "version": row.version,
        "signer_id": row.signer_id,
        "role": row.role,
        "field": row.field,
        "signed_at": row.signed_at,
        "base_sha256": row.base_sha256,
        "sha256": row.sha256,
    }


def recording_content(record: Any) -> dict[str, object]:
    """A recording segment once over (stopped, or failed and closed as it was): its file's
    SHA-256, size and length, whose call, who started it and when. Chained once, when it ends."""
    return {
        "id": record.id,
        "consult_id": record.consult_id,
        "round_id": record.round_id,
        "segment": record.segment,
        "state": record.state,
        "started_at": record.started_at,
        "stopped_at": record.stopped_at,
        "started_by": record.started_by,
        "duration_s": record.duration_s,
        "bytes": record.bytes,
        "sha256": record.sha256,
    }


@dataclass(frozen=True)
class Row:
    """A clinical row as the chain sees it."""

    id: str
    at: datetime | None
    digest: str


@dataclass(frozen=True)
class Witness:
    """A kind of clinical row the chain vouches for: the entries that chain it (`actions`, about
    `target_type`), and every such row that must have one, with the hash of its content."""

    name: str  # how a report names such a row
    target_type: str
    actions: tuple[str, ...]
    rows: Callable[[Connection], Iterator[Row]]


def _notes(connection: Connection) -> Iterator[Row]:
    for note in connection.execute(select(Note.__table__).execution_options(yield_per=BATCH)):
        yield Row(note.id, note.created_at, content_hash(note_content(note)))


def _outcomes(connection: Connection) -> Iterator[Row]:
    # Generated demo history (`demo`) is never a real patient's and was never chained.
    consults = Consult.__table__
    chosen = select(consults).where(consults.c.outcome.is_not(None), consults.c.demo.is_(False))
    for consult in connection.execute(chosen.execution_options(yield_per=BATCH)):
        yield Row(consult.id, consult.ended_at, content_hash(outcome_content(consult)))


def _results(connection: Connection) -> Iterator[Row]:
    consults = Consult.__table__
    chosen = select(consults).where(consults.c.result.is_not(None), consults.c.demo.is_(False))
    for consult in connection.execute(chosen.execution_options(yield_per=BATCH)):
        yield Row(consult.id, consult.result_at, content_hash(result_content(consult)))


def _consents(connection: Connection) -> Iterator[Row]:
    for record in connection.execute(select(ConsentRecord.__table__).execution_options(yield_per=BATCH)):
        yield Row(record.id, record.recorded_at, content_hash(consent_content(record)))


def _minutes_signatures(connection: Connection) -> Iterator[Row]:
    for row in connection.execute(select(MinutesSignature.__table__).execution_options(yield_per=BATCH)):
        yield Row(row.id, row.signed_at, content_hash(signature_content(row)))


def _recordings(connection: Connection) -> Iterator[Row]:
    recordings = Recording.__table__
    ended = select(recordings).where(recordings.c.state != "recording")
    for record in connection.execute(ended.execution_options(yield_per=BATCH)):
        yield Row(record.id, record.stopped_at, content_hash(recording_content(record)))


WITNESSES: tuple[Witness, ...] = (
    Witness("note", "note", ("note.add", "note.amend"), _notes),
    Witness("outcome of consult", "consult", ("consult.end",), _outcomes),
    Witness("result of consult", "consult", ("consult.result",), _results),
    Witness("consent", "consent", ("consent.record",), _consents),
    Witness("signature of the minutes", "minutes_signature", ("minutes.sign",), _minutes_signatures),
    Witness("recording", "recording", ("recording.stop", "recording.fail"), _recordings),
)


# The walk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    entries: int
    problem: str | None  # the first altered or missing entry or row; None: intact

    @property
    def intact(self) -> bool:
        return self.problem is None


def describe(entry: EntryFields) -> str:
    return f"entry {entry.seq} (id {entry.id}, {_plain(entry.at)}, {entry.action})"


def _entries(connection: Connection, after: int) -> Iterator[Any]:
    table = AuditEntry.__table__
    while True:
        batch = connection.execute(select(table).where(table.c.seq > after).order_by(table.c.seq).limit(BATCH)).all()
        yield from batch
        if len(batch) < BATCH:
            return
        after = batch[-1].seq


def walk(connection: Connection, witnesses: tuple[Witness, ...] = WITNESSES) -> Report:
    """Check the chain from its first entry to its head, then every clinical row against its
    latest chained entry. Clinical rows are read first: an entry is committed with its row, so
    every row read is chained by an entry the walk reaches (it follows the head as it grows)."""
    # Keyed by the witness: a consult's outcome and its result are two rows about one consult.
    rows = {(w.name, row.id): (w, row) for w in witnesses for row in w.rows(connection)}
    chaining = {(action, w.target_type): w for w in witnesses for action in w.actions}
    chained: dict[tuple[str, str], tuple[Witness, Any]] = {}
    count, prev, last = 0, GENESIS, None
    while True:
        before = count
        for entry in _entries(connection, count):
            if entry.seq != count + 1:
                after = describe(last) if last is not None else "the start of the chain"
                return Report(count, f"entry {count + 1} is missing: {describe(entry)} comes right after {after}")
            if entry.prev_hash != prev:
                return Report(count, f"{describe(entry)} does not follow the entry before it: that one was altered")
            if entry_hash(prev, entry) != entry.hash:
                return Report(count, f"{describe(entry)} was altered")
            witness = chaining.get((entry.action, entry.target_type))
            if witness is not None:
                chained[(witness.name, entry.target_id)] = (witness, entry)
            count, prev, last = entry.seq, entry.hash, entry
        head = connection.execute(select(ChainHead.__table__)).one_or_none()
        if head is None:
            return Report(count, "the chain's head is missing")
        if head.seq == count:
            break
        if head.seq < count or count == before:
            return Report(
                count, f"the last entries are missing: the chain ends at entry {count}, its head at {head.seq}"
            )
    if head.hash != prev:
        return Report(count, f"the chain's head does not match its last entry, {describe(last) if last else 'none'}")
    return Report(count, _first_clinical_problem(rows, chained))


def _first_clinical_problem(
    rows: dict[tuple[str, str], tuple[Witness, Row]], chained: dict[tuple[str, str], tuple[Witness, Any]]
) -> str | None:
    problems: list[tuple[float, str]] = []  # (the entry's seq, or infinity for an unchained row; the problem)
    for (_, target_id), (witness, entry) in chained.items():
        found = rows.get((witness.name, target_id))
        if found is None:
            problems.append((entry.seq, f"{witness.name} {target_id}, chained by {describe(entry)}, is missing"))
        elif DIGEST + found[1].digest != entry.detail:
            problems.append(
                (entry.seq, f"{witness.name} {target_id} was altered: it no longer matches {describe(entry)}")
            )
    for (_, row_id), (witness, row) in rows.items():
        if (witness.name, row_id) not in chained:
            when = _plain(row.at) if row.at else "no time"
            problems.append((float("inf"), f"{witness.name} {row_id} ({when}) has no chained entry"))
    return min(problems)[1] if problems else None


async def verify(db: Database) -> Report:
    async with db.engine.connect() as connection:
        return await connection.run_sync(walk)
