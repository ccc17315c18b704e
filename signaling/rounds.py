"""`round:join`, `round:leave`, `round:focus`, `round:end`: the live ward round, one call for all patients.

The call is the room `round:<round_id>` (server/rooms.py), signaled with `rtc:signal {round_id}`
exactly as a consult's; it stays up while the focus moves. Notes and decisions go through the
consult events on each patient's `consult_id`; joining also puts the socket in the round
session's audience, so it gets those consults' `note:added` and `consult:updated`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import StringConstraints

from server import audit, consults, notes, rounds
from server.errors import AppError
from server.ice import ice_servers
from server.validation import Payload
from signaling.router import Caller, Router
from signaling.rtc import join_room, leave_call

router = Router("/")

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RoundRef(Payload):
    round_id: Id


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
    peer, others = await join_room(caller, rounds.room_of(item.id), role)
    assert services.sio is not None
    await services.sio.enter_room(caller.sid, f"user:{consults.round_audience(held.id)}")
    # Every patient's notes so far, so a late joiner sees the whole record at once (audited per consult).
    found = []
    for consult in loaded.consults.values():
        found += await notes.after(services.db, consult.id)
        await audit.record(services.db, caller.account.id, "notes.list", "consult", consult.id, caller.address)
    who = await consults.people(services.db, [n.author_id for n in found])
    described = await rounds.view(services.db, loaded)
    # Joining may have started the session: tell those already in the call.
    await services.sio.emit("round:updated", {"round": described}, room=rounds.room_of(item.id), skip_sid=caller.sid)
    return {
        "round": described,
        "peer_id": peer.peer_id,
        "peers": others,
        "ice_servers": ice_servers(services.settings, caller.account.id),
        "notes": [notes.view(n, who) for n in sorted(found, key=lambda n: (n.consult_id, n.seq))],
    }


@router.on("round:leave", RoundRef)
async def round_leave(caller: Caller, payload: RoundRef) -> dict[str, Any]:
    await leave_call(caller, rounds.room_of(payload.round_id))
    return {}


@router.on("round:focus", RoundFocus)
async def round_focus(caller: Caller, payload: RoundFocus) -> dict[str, Any]:
    await rounds.focus(caller.services.db, caller.account, payload.round_id, payload.patient_id)
    return {"round": await rounds.publish(caller.services, payload.round_id)}


@router.on("round:end", RoundRef)
async def round_end(caller: Caller, payload: RoundRef) -> dict[str, Any]:
    services = caller.services
    if not await rounds.end(services, caller.account, payload.round_id):
        raise AppError("conflict", "the round is not in progress")
    described = await rounds.publish(services, payload.round_id)
    await services.rooms.close(rounds.room_of(payload.round_id))  # like a consult's call when it ends
    services.board_changed()
    return {"round": described}
