"""Case notes: durable before acknowledged, idempotent by op_id, numbered per consult, append-only.

An amendment is a new note that `amends` the version it replaces: only that note's author may
write it, and only of the current version (each version is amended at most once), so a
note's versions form one line, never a fork that hides one writer's text behind another's.

`seq` comes from a counter on the consult, incremented in the same transaction that inserts
the note. The increment is the transaction's first statement, so it takes the write lock
first (a row lock on PostgreSQL, the database lock on SQLite) and writers on every instance
queue behind it: seq is consecutive, with no gap and no duplicate.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select, update

from server.consults import iso
from server.errors import AppError
from server.records import Consult, Database, Note, utcnow

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


async def add(
    db: Database,
    *,
    consult_id: str,
    op_id: str,
    section: str,
    text: str,
    author_id: str,
    amends: str | None = None,
) -> tuple[Note, bool]:
    """Store a note (or find the one this op_id stored). `(note, created)`; committed on return."""
    async with db.session() as session:
        try:
            await session.execute(update(Consult).where(Consult.id == consult_id).values(note_seq=Consult.note_seq + 1))
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
            seq = await session.scalar(select(Consult.note_seq).where(Consult.id == consult_id))
            if seq is None:
                raise AppError("not_found", "no such consult")
            note = Note(
                consult_id=consult_id,
                seq=seq,
                op_id=op_id,
                section=section,
                text=text,
                author_id=author_id,
                created_at=utcnow(),
                amends=amends,
            )
            session.add(note)
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


def view(note: Note, who: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The contract's `note`: `{id, seq, consult_id, section, text, author, created_at, amends}`."""
    return {
        "id": note.id,
        "seq": note.seq,
        "consult_id": note.consult_id,
        "section": note.section,
        "text": note.text,
        "author": who.get(note.author_id),
        "created_at": iso(note.created_at),
        "amends": note.amends,
    }


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
