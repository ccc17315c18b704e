"""Writing a consult's shared case notes: `note:add` and `note:amend`.

A note is written once the consult is accepted (and after it ended), by whoever may write to it
(`access.consult_for`). The action returns the note as clients see it and the events its writing
causes; the handler hands those to the outbox, so this module sends nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.actions.access import consult_for
from server.contract.errors import AppError
from server.contract.views import NoteView, note_view
from server.outbox import Event, To
from server.records import consults, notes
from server.records.users import Account
from server.runtime.services import Services


@dataclass(frozen=True)
class Written:
    """The note's view, and the events to send: none when its `op_id` had stored it already."""

    note: NoteView
    events: list[Event] = field(default_factory=list)


async def write(
    services: Services,
    account: Account,
    *,
    consult_id: str,
    op_id: str,
    text: str,
    section: str = "",
    amends: str | None = None,
) -> Written:
    """Add a note to a section, or (`amends`: a note's id) amend one; `note:added` to every
    screen showing the consult (`To.parties`: those involved and those in its call)."""
    if len(text) > notes.MAX_TEXT:
        raise AppError("too_large", f"a note is at most {notes.MAX_TEXT} characters")
    consult = await consult_for(services, account, consult_id, write=True)
    if consult.status not in ("active", "ended"):
        raise AppError("conflict", f"notes are written once the consult is accepted; it is {consult.status}")
    settings = services.settings
    note, created = await notes.add(
        services.db,
        consult_id=consult.id,
        op_id=op_id,
        section=section,
        text=text,
        author_id=account.id,
        amends=amends,
        caps=notes.Caps(notes=settings.notes_per_consult, bytes=settings.note_bytes_per_consult),
    )
    view = note_view(note, await consults.people(services.db, [note.author_id]))
    if not created:  # a repeated op_id: the same answer, nothing new to tell anyone
        return Written(view)
    services.metrics.note_writes.inc()
    return Written(view, [Event("note:added", {"consult_id": consult.id, "note": view}, To.parties(consult))])
