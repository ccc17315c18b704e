"""`consult:request`, `consult:cancel`, `consult:accept`, `consult:decline`, `consult:widen`, `consult:end`,
and the offers' clock. Each handler calls its action and hands the events it returns to the outbox,
in their order, before answering."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from server import outbox
from server.actions import dispatch, rounds
from server.contract.validation import Id, OpId, Payload
from server.policy import matching
from server.records import consults
from server.runtime import loops
from server.runtime.services import Services
from signaling.router import Caller, Router

router = Router("/")


class Patient(Payload):
    ref: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    summary: Annotated[str, StringConstraints(max_length=2000)] = ""
    age: Annotated[int, Field(ge=0, le=130)] | None = None
    sex: Literal["male", "female", "other"] | None = None


class ConsultRequest(Payload):
    op_id: OpId
    specialty: str
    urgency: matching.Urgency
    patient: Patient
    specialist_id: Id | None = None

    @field_validator("specialty")
    @classmethod
    def known_specialty(cls, value: str) -> str:
        if value not in matching.SPECIALTIES:
            raise ValueError(f"unknown specialty; one of {', '.join(matching.SPECIALTIES)}")
        return value


class ConsultRef(Payload):
    consult_id: Id


class ConsultDecline(Payload):
    consult_id: Id
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class ConsultEnd(Payload):
    consult_id: Id
    outcome: Literal["treated_locally", "transfer", "follow_up", "onsite_support"]
    summary: Annotated[str, StringConstraints(max_length=20000)] | None = None


@router.on("consult:request", ConsultRequest)
async def consult_request(caller: Caller, payload: ConsultRequest) -> dict[str, Any]:
    requested = await dispatch.request(
        caller.services,
        caller.account,
        op_id=payload.op_id,
        specialty=payload.specialty,
        urgency=payload.urgency,
        patient=payload.patient.model_dump(),
        specialist_id=payload.specialist_id,
    )
    await outbox.send(caller.services, requested.events)
    return {"consult": await dispatch.describe(caller.services, requested.consult)}


@router.on("consult:cancel", ConsultRef)
async def consult_cancel(caller: Caller, payload: ConsultRef) -> dict[str, Any]:
    changed = await dispatch.cancel(caller.services, caller.account, payload.consult_id)
    await outbox.send(caller.services, changed.events)
    return {"consult": await dispatch.describe(caller.services, changed.consult)}


@router.on("consult:accept", ConsultRef)
async def consult_accept(caller: Caller, payload: ConsultRef) -> dict[str, Any]:
    changed = await dispatch.accept(caller.services, caller.account, payload.consult_id)
    await outbox.send(caller.services, changed.events)
    return {"consult": await dispatch.describe(caller.services, changed.consult)}


@router.on("consult:decline", ConsultDecline)
async def consult_decline(caller: Caller, payload: ConsultDecline) -> dict[str, Any]:
    events = await dispatch.decline(caller.services, caller.account, payload.consult_id, payload.reason)
    await outbox.send(caller.services, events)
    return {}


@router.on("consult:widen", ConsultRef)
async def consult_widen(caller: Caller, payload: ConsultRef) -> dict[str, Any]:
    changed = await dispatch.widen(caller.services, caller.account, payload.consult_id)
    await outbox.send(caller.services, changed.events)
    return {"consult": await dispatch.describe(caller.services, changed.consult)}


@router.on("consult:end", ConsultEnd)
async def consult_end(caller: Caller, payload: ConsultEnd) -> dict[str, Any]:
    services, account = caller.services, caller.account
    found = await consults.get(services.db, payload.consult_id)
    if found is not None and found.round_session_id is not None:
        ended = await rounds.decide(services, account, found, payload.outcome, payload.summary)
    else:
        changed = await dispatch.end(services, account, payload.consult_id, payload.outcome, payload.summary)
        await outbox.send(services, changed.events)
        ended = changed.consult
    return {"consult": await dispatch.describe(services, ended)}


async def offer_clock(services: Services, interval_s: float = 0.1) -> None:
    """Runs on every instance; each due offer is handled by one of them, its events sent before the next."""

    async def tick() -> None:
        for consult_id in await dispatch.due(services):
            await outbox.send(services, await dispatch.expire(services, consult_id))

    await loops.every(interval_s, tick, "offer expiry")
