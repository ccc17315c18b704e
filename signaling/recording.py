"""Recording a call at the server: `recording:start`, `recording:stop` (server/actions/recording.py)."""

from __future__ import annotations

from typing import Any

from server.actions import recording
from server.contract.validation import Id, Payload
from signaling.router import Caller, Router

router = Router("/")


class CallRef(Payload):
    consult_id: Id | None = None
    round_id: Id | None = None


@router.on("recording:start", CallRef)
async def recording_start(caller: Caller, payload: CallRef) -> dict[str, Any]:
    view = await recording.start(caller.services, caller.account, payload.consult_id, payload.round_id, caller.address)
    return {"recording": view}


@router.on("recording:stop", CallRef)
async def recording_stop(caller: Caller, payload: CallRef) -> dict[str, Any]:
    view = await recording.request_stop(caller.services, caller.account, payload.consult_id, payload.round_id)
    return {"recording": view}
