"""`consult:request`, `consult:cancel`, `consult:accept`, `consult:decline`, `consult:widen`, `consult:end`,
`consult:result`, and the offers' clock. Each handler gives its action a list for the events it causes
(`outbox.sending`), which go out in their order before the answer, even if the action failed
half-way."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from server import outbox
from server.actions import consent, dispatch, recording, results, rounds
from server.contract import validation
from server.contract.validation import Id, OpId, Payload
from server.policy import consent as consent_policy
from server.policy import matching
from server.records import consents, consults
from server.runtime import loops
from server.runtime.services import Services
from signaling.router import Caller, Router

router = Router("/")


class Patient(validation.Identity):
    """The patient of a request: the hospital's reference and the case, and their identity
    (patient data: never logged; shown only to those who may read the consult)."""

    ref: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    summary: Annotated[str, StringConstraints(max_length=2000)] = ""
    age: Annotated[int, Field(ge=0, le=130)] | None = None


class Consent(validation.Consent):
    def given(self) -> consents.Given:
        return consents.given(self)


class ConsultRequest(Payload):
    op_id: OpId
    specialty: str
    urgency: matching.Urgency
    patient: Patient
    specialist_id: Id | None = None
    consent: Consent | None = None
    consent_waived_reason: (
        Annotated[str, StringConstraints(min_length=1, max_length=consent_policy.WAIVER_LENGTH)] | None
    ) = None

    @field_validator("specialty")
    @classmethod
    def known_specialty(cls, value: str) -> str:
        if value not in matching.SPECIALTIES:
            raise ValueError(f"unknown specialty; one of {', '.join(matching.SPECIALTIES)}")
        return value


class ConsultRef(Payload):
    consult_id: Id


class ConsultConsent(Consent):
    consult_id: Id
    op_id: OpId


class ConsultDecline(Payload):
    consult_id: Id
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class ConsultEnd(Payload):
    consult_id: Id
    op_id: OpId | None = None
    outcome: Literal["treated_locally", "transfer", "follow_up", "onsite_support"]
    summary: Annotated[str, StringConstraints(max_length=20000)] | None = None


class ConsultResult(Payload):
    consult_id: Id
    op_id: OpId
    result: Literal["recovered", "improving", "transferred", "died", "other"]
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


@router.on("consult:request", ConsultRequest)
async def consult_request(caller: Caller, payload: ConsultRequest) -> dict[str, Any]:
    async with outbox.sending(caller.services) as events:
        consult = await dispatch.request(
            caller.services,
            events,
            caller.account,
            op_id=payload.op_id,
            specialty=payload.specialty,
            urgency=payload.urgency,
            patient=payload.patient.model_dump(exclude_none=True),
            specialist_id=payload.specialist_id,
            consent=payload.consent.given() if payload.consent is not None else None,
            consent_waived_reason=payload.consent_waived_reason,
        )
    return {"consult": await dispatch.describe(caller.services, consult)}


@router.on("consult:consent", ConsultConsent)
async def consult_consent(caller: Caller, payload: ConsultConsent) -> dict[str, Any]:
    async with outbox.sending(caller.services) as events:
        consult = await consent.record(
            caller.services,
            events,
            caller.account,
            consult_id=payload.consult_id,
            op_id=payload.op_id,
            given=payload.given(),
            address=caller.address,
        )
    # Consent to recording withdrawn: a recording of this patient stops before the answer.
    await recording.consent_changed(caller.services, consult.id, list(payload.scopes), consult.round_session_id)
    return {"consult": await dispatch.describe(caller.services, consult)}


@router.on("consult:cancel", ConsultRef)
async def consult_cancel(caller: Caller, payload: ConsultRef) -> dict[str, Any]:
    async with outbox.sending(caller.services) as events:
        consult = await dispatch.cancel(caller.services, events, caller.account, payload.consult_id)
    return {"consult": await dispatch.describe(caller.services, consult)}


@router.on("consult:accept", ConsultRef)
async def consult_accept(caller: Caller, payload: ConsultRef) -> dict[str, Any]:
    async with outbox.sending(caller.services) as events:
        consult = await dispatch.accept(caller.services, events, caller.account, payload.consult_id)
    return {"consult": await dispatch.describe(caller.services, consult)}


@router.on("consult:decline", ConsultDecline)
async def consult_decline(caller: Caller, payload: ConsultDecline) -> dict[str, Any]:
    async with outbox.sending(caller.services) as events:
        await dispatch.decline(caller.services, events, caller.account, payload.consult_id, payload.reason)
    return {}


@router.on("consult:widen", ConsultRef)
async def consult_widen(caller: Caller, payload: ConsultRef) -> dict[str, Any]:
    async with outbox.sending(caller.services) as events:
        consult = await dispatch.widen(caller.services, events, caller.account, payload.consult_id)
    return {"consult": await dispatch.describe(caller.services, consult)}


@router.on("consult:end", ConsultEnd)
async def consult_end(caller: Caller, payload: ConsultEnd) -> dict[str, Any]:
    services, account = caller.services, caller.account
    found = await consults.get(services.db, payload.consult_id)
    if found is not None and found.round_session_id is not None:
        ended = await rounds.decide(services, account, found, payload.outcome, payload.summary, payload.op_id)
    else:
        async with outbox.sending(services) as events:
            ended = await dispatch.end(
                services, events, account, payload.consult_id, payload.outcome, payload.summary, payload.op_id
            )
    return {"consult": await dispatch.describe(services, ended)}


@router.on("consult:result", ConsultResult)
async def consult_result(caller: Caller, payload: ConsultResult) -> dict[str, Any]:
    async with outbox.sending(caller.services) as events:
        consult = await results.report(
            caller.services,
            events,
            caller.account,
            consult_id=payload.consult_id,
            op_id=payload.op_id,
            result=payload.result,
            note=payload.note,
            address=caller.address,
        )
    return {"consult": await dispatch.describe(caller.services, consult)}


async def offer_clock(services: Services, interval_s: float = 0.1) -> None:
    """Runs on every instance; each due offer is handled by one of them, its events sent before the next."""

    async def tick() -> None:
        for consult_id in await dispatch.due(services):
            async with outbox.sending(services) as events:
                await dispatch.expire(services, events, consult_id)

    await loops.every(interval_s, tick, "offer expiry")
