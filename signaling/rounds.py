"""`round:join`, `round:leave`, `round:focus`, `round:end`: the live ward round, one call for all patients.

The call is the room `round:<round_id>` (server/live/rooms.py), signaled with `rtc:signal {round_id}`
exactly as a consult's; it stays up while the focus moves. Notes and decisions go through the
consult events on each patient's `consult_id`; joining also puts the socket in the round
session's audience, so it gets those consults' `note:added` and `consult:updated`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from server import outbox
from server.actions import rounds
from server.contract.errors import AppError
from server.contract.validation import Id, Payload
from server.live import keys
from server.outbox import Event, To
from server.records import audit
from server.records import rounds as round_records
from server.runtime.ice import call_network
from signaling.notes import note_page
from signaling.router import Caller, Router
from signaling.rtc import join_room, leave_call, left_call

router = Router("/")


class RoundRef(Payload):
    round_id: Id


class RoundNotes(Payload):
    round_id: Id
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    limit: Annotated[int, Field(ge=1)] | None = None


class RoundFocus(Payload):
    round_id: Id
    patient_id: Id


@router.on("round:join", RoundRef)
async def round_join(caller: Caller, payload: RoundRef) -> dict[str, Any]:
    services = caller.services
    loaded = await rounds.start(services.db, caller.account, payload.round_id, datetime.now(UTC))
    item, held = loaded.round, loaded.session
    assert held is not None
    role = "lead" if caller.account.id == item.lead_specialist_id else caller.account.role
    peer, others = await join_room(caller, keys.round_room(item.id), role)
    assert services.sio is not None
    await services.sio.enter_room(caller.sid, keys.user_room(keys.round_audience(held.id)))
    # The first page of every patient's notes so far, so a late joiner sees the record at once;
    # the rest come with `round:notes {cursor}` (audited per consult).
    first = await note_page(caller, sorted(c.id for c in loaded.consults.values()))
    for consult in loaded.consults.values():
        await audit.record(services.db, caller.account.id, "notes.list", "consult", consult.id, caller.address)
    described = await rounds.view(services.db, loaded)
    # Joining may have started the session: tell every screen that lists the round.
    team = To.users(sorted(await rounds.team_of(services.db, item)))
    updated = Event("round:updated", {"round": described}, team, skip_sid=caller.sid)
    await outbox.send(services, [updated])
    return {
        "round": described,
        "peer_id": peer.peer_id,
        "peers": others,
        **call_network(services.settings, caller.account.id),
        **first,
    }


@router.on("round:notes", RoundNotes)
async def round_notes(caller: Caller, payload: RoundNotes) -> dict[str, Any]:
    """`{notes, next_cursor}`: the next page of the notes of today's session's patients."""
    services = caller.services
    item = await rounds.readable(services.db, caller.account, payload.round_id)
    loaded = await round_records.load(services.db, item.id)
    if loaded.session is None:
        return {"notes": [], "next_cursor": None}
    answer = await note_page(
        caller, sorted(c.id for c in loaded.consults.values()), cursor=payload.cursor, limit=payload.limit
    )
    for consult in loaded.consults.values():
        await audit.record(
            services.db, caller.account.id, "notes.list", "consult", consult.id, caller.address,
            f"cursor={payload.cursor}",
        )  # fmt: skip
    return answer


@router.on("round:leave", RoundRef)
async def round_leave(caller: Caller, payload: RoundRef) -> dict[str, Any]:
    await leave_call(caller, keys.round_room(payload.round_id))
    return {}


@router.on("round:focus", RoundFocus)
async def round_focus(caller: Caller, payload: RoundFocus) -> dict[str, Any]:
    await rounds.focus(caller.services.db, caller.account, payload.round_id, payload.patient_id)
    described, events = await rounds.updated(caller.services.db, payload.round_id)
    await outbox.send(caller.services, events)
    return {"round": described}


@router.on("round:end", RoundRef)
async def round_end(caller: Caller, payload: RoundRef) -> dict[str, Any]:
    services = caller.services
    if not await rounds.end(services, caller.account, payload.round_id):
        raise AppError("conflict", "the round is not in progress")
    described, events = await rounds.updated(services.db, payload.round_id)
    await outbox.send(services, events)
    in_call = await services.rooms.close(keys.round_room(payload.round_id))  # like a consult's call when it ends
    await left_call(services, keys.round_room(payload.round_id), [peer.user for peer in in_call])
    services.board_changed()
    return {"round": described}
