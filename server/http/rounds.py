"""Ward rounds over HTTP: the schedule, the patient list, the calendar feed. See server/actions/rounds.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field, StringConstraints
from sqlalchemy import select

from server import outbox
from server.actions import calendar, rounds
from server.contract.errors import AppError
from server.contract.validation import (
    Consent,
    Id,
    Identity,
    Payload,
    check_instant,
    check_period,
    parse_day,
    parse_instant,
)
from server.contract.views import hospital_ref, iso
from server.http.common import client_address, query_time, read_json, require_account, services_of
from server.live import revocation
from server.outbox import Event, To
from server.policy import recurrence
from server.policy import rounds as round_policy
from server.records import audit, consults
from server.records import rounds as round_records
from server.records.models import Hospital, Round, SisterLink, User
from server.records.users import Account, load_account

routes = web.RouteTableDef()

MAX_WINDOW = timedelta(days=92)
DEFAULT_WINDOW = timedelta(days=7)


class PatientIn(Identity):
    """A patient for the list: bed, reference, case, and the identity and consent a consult
    request takes, validated by the same rules."""

    bed: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    ref: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    summary: Annotated[str, StringConstraints(max_length=2000)] = ""
    consent: Consent | None = None

    def listed(self) -> rounds.Listed:
        return rounds.Listed(self.bed, self.ref, self.summary, self.identity(), self.consent)


class RoundIn(Payload):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    hospital_id: Id
    ward: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    starts_at: str
    duration_min: int
    recurrence: Literal["daily", "weekly"] | None = None
    until: str | None = None
    lead_specialist_id: Id
    participant_ids: Annotated[list[Id], Field(max_length=20, default_factory=list)]
    patients: Annotated[list[PatientIn], Field(default_factory=list)]


class RoundPatch(Payload):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    ward: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    starts_at: str | None = None
    duration_min: int | None = None
    recurrence: Literal["daily", "weekly"] | None = None
    until: str | None = None
    lead_specialist_id: Id | None = None
    participant_ids: Annotated[list[Id], Field(max_length=20)] | None = None


class CancelIn(Payload):
    day: str | None = None


class PatientPatch(Identity):
    """What changes; identity fields given replace those kept, `consent` replaces the consent."""

    bed: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    ref: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    summary: Annotated[str, StringConstraints(max_length=2000)] | None = None
    consent: Consent | None = None


class OrderIn(Payload):
    patient_ids: list[Id]


class LeadAnswer(Payload):
    accept: bool


async def _audit(request: web.Request, account: Account, action: str, round_id: str, detail: str = "") -> None:
    db = services_of(request).db
    await audit.record(db, account.id, action, "round", round_id, client_address(request), detail)


async def _answer(request: web.Request, round_id: str, status: int = 200) -> web.Response:
    """The round after a change, also sent as `round:updated` to its call."""
    services = services_of(request)
    described, events = await rounds.updated(services.db, round_id)
    await outbox.send(services, events)
    return web.json_response({"round": described}, status=status)


# The calendar feed first: `/api/rounds/calendar` must not be taken for a round id.


@routes.post("/api/rounds/calendar")
async def new_feed(request: web.Request) -> web.Response:
    account = await require_account(request)
    secret = await calendar.new_secret(services_of(request).db, account.id)
    await audit.record(services_of(request).db, account.id, "calendar.key", "user", account.id, client_address(request))
    url = f"{request.scheme}://{request.host}/api/rounds.ics?key={secret}"
    return web.json_response({"url": url}, status=201)


@routes.delete("/api/rounds/calendar")
async def revoke_feed(request: web.Request) -> web.Response:
    account = await require_account(request)
    revoked = await calendar.revoke(services_of(request).db, account.id)
    await audit.record(
        services_of(request).db, account.id, "calendar.revoke", "user", account.id, client_address(request)
    )
    return web.json_response({"revoked": revoked})


@routes.get("/api/rounds/hospitals")
async def schedulable_hospitals(request: web.Request) -> web.Response:
    """The hospitals the caller may schedule a round at, for the browser's form (see
    `round_policy.may_create`), each with its clinicians: a round there may invite them besides the
    specialists of the roster."""
    account = await require_account(request)
    async with services_of(request).db.session() as session:
        every = (await session.scalars(select(Hospital).order_by(Hospital.name))).all()
        links = (await session.execute(select(SisterLink.upper_id, SisterLink.lower_id))).all()
        sisters: dict[str, set[str]] = {}
        for upper_id, lower_id in links:
            sisters.setdefault(lower_id, set()).add(upper_id)
        allowed = [
            h
            for h in every
            if h.level != "authority" and round_policy.may_create(account, h.id, sisters.get(h.id, set()))
        ]
        found = await session.execute(
            select(User.id, User.name, User.hospital_id)
            .where(User.role == "clinician", User.active.is_(True), User.hospital_id.in_([h.id for h in allowed]))
            .order_by(User.name)
        )
    clinicians: dict[str, list[dict[str, str]]] = {}
    for user_id, name, hospital_id in found.all():
        clinicians.setdefault(hospital_id, []).append({"id": user_id, "name": name})
    return web.json_response(
        {
            "hospitals": [
                {**hospital_ref(h.id, h.name, h.level), "clinicians": clinicians.get(h.id, [])} for h in allowed
            ]
        }
    )


@routes.get("/api/rounds.ics")
async def get_feed(request: web.Request) -> web.Response:
    services = services_of(request)
    owner = await calendar.owner_of(services.db, request.query.get("key", ""))
    if owner is None:
        raise AppError("unauthorized", "this calendar address is not valid (revoked or never made)")
    account = await load_account(services, owner)
    now = datetime.now(UTC)
    found = [r for r in await round_records.visible(services.db, account) if calendar.lasting(r, now)]
    who = await consults.people(services.db, [r.lead_specialist_id for r in found])
    async with services.db.session() as session:
        names = {h.id: h.name for h in [await session.get(Hospital, i) for i in {r.hospital_id for r in found}] if h}
    entries = [
        calendar.Entry(
            r, names.get(r.hospital_id, ""), who[r.lead_specialist_id]["name"] if r.lead_specialist_id in who else ""
        )
        for r in found
    ]
    return web.Response(
        body=calendar.feed(entries, now),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "private, no-store", "Content-Disposition": 'inline; filename="telerounds.ics"'},
    )


@routes.get("/api/rounds")
async def list_rounds(request: web.Request) -> web.Response:
    account = await require_account(request)
    services = services_of(request)
    today = datetime.combine(recurrence.day_of(datetime.now(UTC)), datetime.min.time(), recurrence.VIETNAM)
    start = query_time(request, "from") or today.astimezone(UTC)
    end = query_time(request, "to") or check_instant("to", start + DEFAULT_WINDOW)
    check_period(start, end, MAX_WINDOW)  # the work below grows with the window, never with the years
    listed = []
    for item in await round_records.visible(services.db, account):
        # A cancelled day, or a round cancelled as a whole, stays on the week, marked.
        moments = round_policy.occurrences_of(item, start, end)
        cancelled = round_policy.cancelled_occurrences_of(item, start, end)
        if moments or cancelled:
            described = await rounds.describe(services.db, item.id)
            listed.append(
                {
                    **described,
                    "occurrences": [iso(m) for m in moments],
                    "cancelled": [iso(m) for m in cancelled],
                }
            )
    await audit.record(services.db, account.id, "rounds.list", "round", "", client_address(request))
    return web.json_response(
        {
            "from": iso(start),
            "to": iso(end),
            "rounds": listed,
            "lead_requests": await rounds.lead_requests(services.db, account),
        }
    )


async def _ask_lead(request: web.Request, item: Round) -> None:
    """`round:lead-requested {request}` to a lead of another network named just now."""
    if item.lead_status != "pending":
        return
    services = services_of(request)
    (asked,) = await rounds.request_views(services.db, [item])
    await outbox.send(services, [Event("round:lead-requested", {"request": asked}, To.user(item.lead_specialist_id))])


@routes.post("/api/rounds/{round_id}/lead")
async def answer_lead(request: web.Request) -> web.Response:
    """The specialist named as lead accepts (`{accept: true}`) or declines the round."""
    account = await require_account(request)
    body = await read_json(request, LeadAnswer)
    round_id = request.match_info["round_id"]
    await rounds.answer_lead(services_of(request).db, account, round_id, body.accept)
    await _audit(request, account, "round.lead", round_id, "accept" if body.accept else "decline")
    return await _answer(request, round_id)


@routes.post("/api/rounds")
async def create_round(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await read_json(request, RoundIn)
    item = await rounds.create(
        services_of(request).db,
        account,
        title=body.title,
        hospital_id=body.hospital_id,
        ward=body.ward,
        starts_at=parse_instant("starts_at", body.starts_at),
        duration_min=body.duration_min,
        rule=body.recurrence,
        until=parse_day("until", body.until) if body.until else None,
        lead_specialist_id=body.lead_specialist_id,
        participant_ids=list(body.participant_ids),
        patients=[p.listed() for p in body.patients],
        caps=rounds.caps_of(services_of(request).settings),
    )
    await _audit(request, account, "round.create", item.id)
    await _ask_lead(request, item)
    return web.json_response({"round": await rounds.describe(services_of(request).db, item.id)}, status=201)


@routes.get("/api/rounds/{round_id}")
async def get_round(request: web.Request) -> web.Response:
    account = await require_account(request)
    item = await rounds.readable(services_of(request).db, account, request.match_info["round_id"])
    await _audit(request, account, "round.read", item.id)
    return web.json_response({"round": await rounds.describe(services_of(request).db, item.id)})


@routes.patch("/api/rounds/{round_id}")
async def patch_round(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await read_json(request, RoundPatch)
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None and name not in ("recurrence", "until"):
            raise AppError("invalid", f"{name} cannot be null")
        if name == "starts_at":
            value = parse_instant(name, value)
        elif name == "until" and value is not None:
            value = parse_day(name, value)
        elif name == "participant_ids":
            value = list(value)
        changes[name] = value
    round_id = request.match_info["round_id"]
    db = services_of(request).db
    before = (
        await round_records.get(db, round_id) if changes.keys() & {"lead_specialist_id", "participant_ids"} else None
    )
    item = await rounds.reschedule(db, account, round_id, changes)
    if before is not None:
        # Whoever it names no more may no longer take part: their open sockets leave its call
        # and stop getting its notes at once, on every instance.
        await revocation.reauthorize(services_of(request), _named(before) - _named(item))
    await _audit(request, account, "round.update", round_id, " ".join(sorted(changes)))
    if "lead_specialist_id" in changes:
        await _ask_lead(request, item)
    return await _answer(request, round_id)


def _named(item: Round) -> set[str]:
    """The people a round names: its lead and its invited participants."""
    return {item.lead_specialist_id, *(item.participant_ids or [])}


@routes.post("/api/rounds/{round_id}/cancel")
async def cancel_round(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await read_json(request, CancelIn) if request.can_read_body else CancelIn()
    round_id = request.match_info["round_id"]
    day = parse_day("day", body.day) if body.day else None
    await rounds.cancel(services_of(request).db, account, round_id, day)
    await _audit(request, account, "round.cancel", round_id, f"day={body.day or ''}")
    return await _answer(request, round_id)


@routes.post("/api/rounds/{round_id}/patients")
async def add_patient(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await read_json(request, PatientIn)
    round_id = request.match_info["round_id"]
    await rounds.add_patient(services_of(request), account, round_id, body.listed())
    await _audit(request, account, "round.patients", round_id, "add")
    return await _answer(request, round_id, 201)


@routes.put("/api/rounds/{round_id}/patients")
async def reorder_patients(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await read_json(request, OrderIn)
    round_id = request.match_info["round_id"]
    await rounds.reorder(services_of(request).db, account, round_id, list(body.patient_ids))
    await _audit(request, account, "round.patients", round_id, "reorder")
    return await _answer(request, round_id)


@routes.patch("/api/rounds/{round_id}/patients/{patient_id}")
async def edit_patient(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await read_json(request, PatientPatch)
    changes = body.model_dump(include={"bed", "ref", "summary"}, exclude_none=True)
    round_id, patient_id = request.match_info["round_id"], request.match_info["patient_id"]
    await rounds.edit_patient(
        services_of(request).db, account, round_id, patient_id, changes, body.identity(), body.consent
    )
    await _audit(request, account, "round.patients", round_id, f"edit {patient_id}")
    return await _answer(request, round_id)


@routes.delete("/api/rounds/{round_id}/patients/{patient_id}")
async def remove_patient(request: web.Request) -> web.Response:
    account = await require_account(request)
    round_id, patient_id = request.match_info["round_id"], request.match_info["patient_id"]
    await rounds.remove_patient(services_of(request), account, round_id, patient_id)
    await _audit(request, account, "round.patients", round_id, f"remove {patient_id}")
    return await _answer(request, round_id)
