"""`presence:set`."""

from __future__ import annotations

from typing import Any

from server import outbox
from server.actions import dispatch
from server.contract.errors import AppError
from server.contract.validation import Payload
from server.live import presence
from server.outbox import Event, To
from signaling.router import Caller, Router

router = Router("/")


class PresenceSet(Payload):
    status: presence.Status


@router.on("presence:set", PresenceSet)
async def presence_set(caller: Caller, payload: PresenceSet) -> dict[str, Any]:
    if caller.account.role not in ("specialist", "clinician"):
        raise AppError("forbidden", "only specialists and clinicians have a presence")
    await presence.set_status(caller.services.redis, caller.account.id, payload.status)
    await caller.services.live.forget_rounds(caller.account.id)  # their choice outranks a round's busy
    caller.services.board_changed()
    if payload.status == "available" and caller.account.role == "specialist":
        async with outbox.sending(caller.services) as events:
            await dispatch.offer_waiting(caller.services, events, caller.account.id)
    now = await presence.of(caller.services.redis, caller.account.id)
    # The user's other devices show the status too; this one reads it from the ack.
    changed = Event("presence:changed", {"presence": now}, To.user(caller.account.id), skip_sid=caller.sid)
    await outbox.send(caller.services, [changed])
    return {"presence": now}
