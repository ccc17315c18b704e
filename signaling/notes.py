"""`note:add`, `note:amend`, `note:list`: the shared case notes of a consult."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from server import outbox
from server.actions.access import consult_for
from server.actions.notes import write
from server.contract.validation import Id, OpId, Payload
from server.contract.views import note_view
from server.records import audit, consults, notes
from signaling.router import Caller, Router

router = Router("/")

Text = Annotated[str, StringConstraints(min_length=1)]


class NoteAdd(Payload):
    consult_id: Id
    op_id: OpId
    section: notes.Section
    text: Text


class NoteAmend(Payload):
    consult_id: Id
    op_id: OpId
    note_id: Id
    text: Text


class NoteList(Payload):
    consult_id: Id
    after_seq: Annotated[int, Field(ge=0)] = 0
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    limit: Annotated[int, Field(ge=1)] | None = None


async def note_page(
    caller: Caller, consult_ids: list[str], *, cursor: str | None = None, after_seq: int = 0, limit: int | None = None
) -> dict[str, Any]:
    """`{notes, next_cursor}`: one page of these consults' notes (NOTE_PAGE_SIZE, NOTE_PAGE_BYTES)."""
    settings = caller.services.settings
    size = min(limit or settings.note_page_size, settings.note_page_size)
    found = await notes.page(
        caller.services.db,
        consult_ids,
        cursor=cursor,
        after_seq=after_seq,
        limit=size,
        max_bytes=settings.note_page_bytes,
    )
    who = await consults.people(caller.services.db, [n.author_id for n in found.notes])
    return {"notes": [note_view(n, who) for n in found.notes], "next_cursor": found.next_cursor}


@router.on("note:add", NoteAdd)
async def note_add(caller: Caller, payload: NoteAdd) -> dict[str, Any]:
    written = await write(
        caller.services,
        caller.account,
        consult_id=payload.consult_id,
        op_id=payload.op_id,
        section=payload.section,
        text=payload.text,
    )
    await outbox.send(caller.services, written.events)
    return {"note": written.note}


@router.on("note:amend", NoteAmend)
async def note_amend(caller: Caller, payload: NoteAmend) -> dict[str, Any]:
    written = await write(
        caller.services,
        caller.account,
        consult_id=payload.consult_id,
        op_id=payload.op_id,
        text=payload.text,
        amends=payload.note_id,
    )
    await outbox.send(caller.services, written.events)
    return {"note": written.note}


@router.on("note:list", NoteList)
async def note_list(caller: Caller, payload: NoteList) -> dict[str, Any]:
    consult = await consult_for(caller.services, caller.account, payload.consult_id, write=False)
    answer = await note_page(
        caller, [consult.id], cursor=payload.cursor, after_seq=payload.after_seq, limit=payload.limit
    )
    await audit.record(
        caller.services.db, caller.account.id, "notes.list", "consult", consult.id, caller.address,
        f"cursor={payload.cursor}" if payload.cursor else f"after_seq={payload.after_seq}",
    )  # fmt: skip
    return answer
