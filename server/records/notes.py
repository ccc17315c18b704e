"""Case notes: durable before acknowledged, idempotent by op_id, numbered per consult, append-only.

An amendment is a new note that `amends` the version it replaces: only that note's author may
write it, and only of the current version (each version is amended at most once), so a
note's versions form one line, never a fork that hides one writer's text behind another's.

`seq` comes from a counter on the consult, incremented in the same transaction that inserts
the note. The increment is the transaction's first statement, so it takes the write lock
first (a row lock on PostgreSQL, the database lock on SQLite) and writers on every instance
queue behind it: seq is consecutive, with no gap and no duplicate.

Each note is chained (server/records/chain.py) in the transaction that stores it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update

from server.contract.errors import AppError
from server.records import chain
from server.records.models import Consult, Database, MinutesVersion, Note, new_id, utcnow

Section = Literal["history", "examination", "investigations", "assessment", "plan", "discussion"]
SECTIONS: tuple[str, ...] = ("history", "examination", "investigations", "assessment", "plan", "discussion")
SECTION_NAMES = {
    "history": "Bệnh sử",
    "examination": "Khám lâm sàng",
    "investigations": "Cận lâm sàng",
    "assessment": "Chẩn đoán",
    "plan": "Hướng xử trí",
    "discussion": "Thảo luận",
}
MAX_TEXT = 20_000


@dataclass(frozen=True)
class Caps:
    """How much one consult's notes may hold (settings NOTES_PER_CONSULT, NOTE_BYTES_PER_CONSULT)."""

    notes: int
    bytes: int

    def check(self, count: int, total_bytes: int) -> None:
        """`too_large` when a consult holding `count` notes of `total_bytes` is beyond the caps."""
        if count > self.notes:
            raise AppError("too_large", f"a consult holds at most {self.notes} notes; this one is full")
        if total_bytes > self.bytes:
            raise AppError(
                "too_large", f"a consult's notes hold at most {self.bytes} bytes of text; this note does not fit"
            )


@dataclass(frozen=True)
class Page:
    """One page of notes, and the cursor of the next (None: this was the last)."""

    notes: list[Note]
    next_cursor: str | None


def cursor_of(note: Note) -> str:
    """Opaque to clients: the consult and seq of the last note given."""
    return f"{note.consult_id}:{note.seq}"


def parse_cursor(cursor: str, consult_ids: Collection[str]) -> tuple[str, int]:
    """`(consult_id, seq)` from a cursor of one of these consults; `invalid` otherwise."""
    consult_id, _, seq = cursor.rpartition(":")
    if consult_id not in consult_ids or not seq.isdigit():
        raise AppError("invalid", "cursor is not one this list gave")
    return consult_id, int(seq)


def page_of(found: list[Note], limit: int, max_bytes: int) -> Page:
    """The first notes of `found` (in order, at most `limit + 1` of them) that fit `limit` notes
    and `max_bytes` bytes of text; always at least one, so a page never stalls."""
    taken: list[Note] = []
    size = 0
    for note in found[:limit]:
        size += len(note.text.encode())
        if taken and size > max_bytes:
            break
        taken.append(note)
    more = len(taken) < len(found)
    return Page(taken, cursor_of(taken[-1]) if more else None)


async def page(
    db: Database, consult_ids: Sequence[str], *, cursor: str | None, after_seq: int, limit: int, max_bytes: int
) -> Page:
    """One page of the notes of `consult_ids`, ordered by consult (in the order given) then seq.
    Start after `cursor` when given, else at `after_seq` in the first consult."""
    if not consult_ids:
        return Page([], None)
    order = {consult_id: i for i, consult_id in enumerate(consult_ids)}
    start_consult, start_seq = parse_cursor(cursor, order) if cursor else (consult_ids[0], after_seq)
    found: list[Note] = []
    async with db.session() as session:
        # One consult at a time, in order: each read is one indexed range of (consult_id, seq).
        for consult_id in consult_ids[order[start_consult] :]:
            wanted = limit + 1 - len(found)
            if wanted <= 0:
                break
            since = start_seq if consult_id == start_consult else 0
            result = await session.scalars(
                select(Note).where(Note.consult_id == consult_id, Note.seq > since).order_by(Note.seq).limit(wanted)
            )
            found += result.all()
    return page_of(found, limit, max_bytes)


async def add(
    db: Database,
    *,
    consult_id: str,
    op_id: str,
    section: str,
    text: str,
    author_id: str,
    amends: str | None = None,
    caps: Caps | None = None,
) -> tuple[Note, bool]:
    """Store a note (or find the one this op_id stored). `(note, created)`; committed on return.
    Beyond `caps` (notes or bytes of the consult) it is `too_large` and nothing is stored."""
    size = len(text.encode())
    async with db.session() as session:
        try:
            await session.execute(
                update(Consult)
                .where(Consult.id == consult_id)
                .values(note_seq=Consult.note_seq + 1, note_bytes=Consult.note_bytes + size)
            )
            existing = await session.scalar(select(Note).where(Note.consult_id == consult_id, Note.op_id == op_id))
            if existing is not None:
                session.expunge(existing)  # keep its loaded fields through the rollback
                await session.rollback()  # a replay: give the seq back
                return existing, False
            if amends is not None:
                original = await session.get(Note, amends)
                if original is None or original.consult_id != consult_id:
                    raise AppError("not_found", "no such note in this consult")
                if original.author_id != author_id:
                    raise AppError("forbidden", "only the author of a note may amend it; add a note of your own")
                # Read under the consult's write lock (taken above): of two amendments of one
                # version, on any instances, the second finds the first and is refused.
                newer = await session.scalar(
                    select(Note.seq).where(Note.consult_id == consult_id, Note.amends == amends).limit(1)
                )
                if newer is not None:
                    raise AppError(
                        "conflict", f"this version was amended already (by note {newer}); amend the current version"
                    )
                section = original.section
            counted = (
                await session.execute(select(Consult.note_seq, Consult.note_bytes).where(Consult.id == consult_id))
            ).first()
            if counted is None:
                raise AppError("not_found", "no such consult")
            seq, total = counted
            if caps is not None:
                caps.check(seq, total)  # counted under the write lock: no two writers pass it at once
            # After the chair and the secretary signed a version of the minutes, what is written
            # is an addendum: marked, and in the next version of the minutes to sign.
            locked = await session.scalar(
                select(MinutesVersion.version)
                .where(MinutesVersion.consult_id == consult_id, MinutesVersion.locked.is_(True))
                .limit(1)
            )
            note = Note(
                id=new_id(),
                consult_id=consult_id,
                seq=seq,
                op_id=op_id,
                section=section,
                text=text,
                author_id=author_id,
                created_at=utcnow(),
                amends=amends,
                addendum=locked is not None,
            )
            session.add(note)
            chain.append(
                session, chain.note_action(note), "note", note.id, chain.note_content(note), actor_id=author_id
            )
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    return note, True


async def after(db: Database, consult_id: str, after_seq: int = 0) -> list[Note]:
    async with db.session() as session:
        result = await session.scalars(
            select(Note).where(Note.consult_id == consult_id, Note.seq > after_seq).order_by(Note.seq)
        )
        return list(result.all())


def current_versions(notes: list[Note]) -> list[tuple[Note, list[Note]]]:
    """Each note's latest version with the versions it replaced (newest first), in seq order."""
    replaced_by = {n.amends: n for n in notes if n.amends}
    latest = [n for n in notes if n.id not in replaced_by]
    by_id = {n.id: n for n in notes}
    chains = []
    for note in latest:
        history = []
        cursor = note
        while cursor.amends and cursor.amends in by_id:
            cursor = by_id[cursor.amends]
            history.append(cursor)
        chains.append((note, history))
    return sorted(chains, key=lambda chain: chain[1][-1].seq if chain[1] else chain[0].seq)
