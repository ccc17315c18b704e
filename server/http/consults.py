"""The consult record over HTTP: list, record, minutes, FHIR export, attachments. Every read is audited."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from sqlalchemy import and_, func, or_, select

from server import outbox
from server.actions import fhir, record, signatures
from server.actions.access import consult_for
from server.contract.errors import AppError, ErrorCode
from server.contract.validation import Id, MinutesSign, Payload, parse_choices, parse_limit, parse_text
from server.contract.views import attachment_view, consent_recorder, consult_view, minutes_view
from server.http.common import client_address, printable_page, query_time, read_json, require_account, services_of
from server.outbox import Event, To
from server.policy import lifecycle
from server.policy.matching import SPECIALTIES
from server.records import attachments, audit, consults, minutes, provinces
from server.records.blobs import BlobDamaged, BlobTooLarge
from server.records.models import Attachment, Consult, User, new_id, utcnow
from server.runtime.services import Services

routes = web.RouteTableDef()

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


LIST_PAGE = 50  # consults per page of the list, by default
LIST_PAGE_MAX = 100
REF_SEARCH_MAX = 64  # characters of a patient reference searched for
KINDS: tuple[str, ...] = ("consult", "round")


@routes.get("/api/consults")
async def list_consults(request: web.Request) -> web.Response:
    """Newest first, one page at a time (`before`: the id of the last consult shown; the answer's
    `next_before` continues, null on the last page). Filters for the history screen."""
    account = await require_account(request)
    services = services_of(request)
    q = request.query
    statuses = parse_choices("status", q.get("status"), lifecycle.CONSULT_STATUSES)
    kinds = parse_choices("kind", q.get("kind"), KINDS)
    specialty = q.get("specialty") or None
    if specialty is not None and specialty not in SPECIALTIES:
        raise AppError("invalid", f"specialty must be one of {', '.join(SPECIALTIES)}")
    ref = parse_text("ref", q.get("ref"), REF_SEARCH_MAX)
    limit = parse_limit("limit", q.get("limit"), LIST_PAGE, LIST_PAGE_MAX)
    before = parse_text("before", q.get("before"), 64)
    query = select(Consult).order_by(Consult.created_at.desc(), Consult.id.desc())
    if statuses:
        query = query.where(Consult.status.in_(statuses))
    if kinds:
        query = query.where(Consult.kind.in_(kinds))
    if specialty is not None:
        query = query.where(Consult.specialty == specialty)
    if ref is not None:
        query = query.where(Consult.patient["ref"].as_string().icontains(ref, autoescape=True))
    start, end = query_time(request, "from"), query_time(request, "to")
    if start:
        query = query.where(Consult.created_at >= start)
    if end:
        query = query.where(Consult.created_at < end)
    if account.role in ("specialist", "clinician"):
        mine = or_(Consult.requester_id == account.id, Consult.specialist_id == account.id)
        if account.role == "clinician":
            mine = or_(mine, Consult.hospital_id == account.hospital_id)
        query = query.where(mine)
    elif account.role != "supervisor":
        raise AppError("forbidden", "consults are for clinicians, specialists and supervisors")
    elif (in_view := await provinces.in_view(services.db, account)) is not None:
        # The consults asked at or answered from a hospital in the supervisor's scope, as on the
        # board: their hospital, or their Department of Health's province (none without one).
        answered_there = select(User.id).where(User.hospital_id.in_(sorted(in_view)))
        query = query.where(or_(Consult.hospital_id.in_(sorted(in_view)), Consult.specialist_id.in_(answered_there)))
    async with services.db.session() as session:
        if before is not None:
            # Looked up within the caller's scope: a cursor says nothing of a consult they may not see.
            last = (await session.scalars(query.where(Consult.id == before))).first()
            if last is None:
                raise AppError("invalid", "before: not a consult of this list")
            query = query.where(
                or_(
                    Consult.created_at < last.created_at,
                    and_(Consult.created_at == last.created_at, Consult.id < last.id),
                )
            )
        found = list((await session.scalars(query.limit(limit + 1))).all())
    found, more = found[:limit], len(found) > limit
    keys = ("status", "kind", "specialty", "ref", "from", "to", "before", "limit")
    filters = " ".join(f"{key}={request.query[key]}" for key in keys if request.query.get(key))
    await audit.record_listing(
        services.db, account.id, "consults.list", [c.id for c in found], client_address(request), filters
    )
    answered = await consults.answers(services.db, [c.id for c in found])
    ids = {
        i
        for c in found
        for i in (
            c.requester_id,
            c.specialist_id,
            c.named_specialist_id,
            c.ended_by_id,
            c.result_by_id,
            consent_recorder(c),
        )
    }
    ids |= {a.user_id for items in answered.values() for a in items}
    who = await consults.people(services.db, ids)
    return web.json_response(
        {
            "consults": [consult_view(c, who, answers=answered.get(c.id, ())) for c in found],
            "next_before": found[-1].id if more else None,
        }
    )


async def _readable(request: web.Request, action: str) -> tuple[Consult, str]:
    account = await require_account(request)
    services = services_of(request)
    consult = await consult_for(services, account, request.match_info["consult_id"], write=False)
    await audit.record(services.db, account.id, action, "consult", consult.id, client_address(request))
    return consult, account.id


@routes.get("/api/consults/{consult_id}")
async def get_record(request: web.Request) -> web.Response:
    consult, _ = await _readable(request, "consult.read")
    db = services_of(request).db
    body = await record.build(db, consult)
    # Who chairs and who takes the minutes, as named so far (`null`: not numbered yet, the defaults).
    row = await minutes.get(db, consult.id)
    return web.json_response({**body, "minutes": minutes_view(row) if row else None})


@routes.get("/api/consults/{consult_id}/minutes")
async def get_minutes(request: web.Request) -> web.Response:
    consult, _ = await _readable(request, "consult.minutes")
    html = record.minutes_html(await record.build(services_of(request).db, consult))
    return printable_page(html)


def _version(request: web.Request) -> int | None:
    raw = request.query.get("version")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise AppError("invalid", "version must be a whole number from 1")
    return int(raw)


@routes.get("/api/consults/{consult_id}/minutes.pdf")
async def get_minutes_pdf(request: web.Request) -> web.Response:
    """The minutes as an archival PDF (server/actions/minutes_pdf.py); numbered at the first
    download. The current version with every signature given so far, or `?version=N`."""
    wanted = _version(request)
    consult, _ = await _readable(request, "consult.minutes_pdf")
    services = services_of(request)
    body, version = await signatures.pdf(services, consult, wanted)
    row = await minutes.get(services.db, consult.id)
    name = f"bien-ban-hoi-chan-{row.number if row else ''}-{row.year if row else ''}-v{version}.pdf"
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@routes.post("/api/consults/{consult_id}/minutes/sign")
async def sign_minutes(request: web.Request) -> web.Response:
    account = await require_account(request)
    services = services_of(request)
    consult = await consult_for(services, account, request.match_info["consult_id"], write=True)
    body = await read_json(request, MinutesSign)
    found = await signatures.sign(services, consult, account, body.pin, client_address(request))
    return web.json_response(found)


@routes.get("/api/consults/{consult_id}/minutes/signatures")
async def get_signatures(request: web.Request) -> web.Response:
    wanted = _version(request)
    consult, _ = await _readable(request, "minutes.signatures")
    return web.json_response(await signatures.validated(services_of(request), consult, wanted))


class MinutesRoles(Payload):
    """`PATCH .../minutes`: who chairs and who takes the minutes; null for the default."""

    chair_id: Id | None = None
    secretary_id: Id | None = None


@routes.patch("/api/consults/{consult_id}/minutes")
async def set_minutes_roles(request: web.Request) -> web.Response:
    """The requester or the accepted specialist names the chair and the secretary, each one of the
    consult's participants (as the record lists them)."""
    account = await require_account(request)
    services = services_of(request)
    consult = await consult_for(services, account, request.match_info["consult_id"], write=True)
    if account.id not in (consult.requester_id, consult.specialist_id):
        raise AppError("forbidden", "only the clinician who asked and the accepted specialist name the chair")
    body = await read_json(request, MinutesRoles)
    data = await record.build(services.db, consult)
    members = {p["id"] for p in data["participants"]}
    for field, user_id in (("chair_id", body.chair_id), ("secretary_id", body.secretary_id)):
        if user_id is not None and user_id not in members:
            raise AppError("invalid", f"{field}: not a participant of this consult")
    row = await minutes.set_roles(services.db, consult, body.chair_id, body.secretary_id)
    await audit.record(services.db, account.id, "minutes.roles", "consult", consult.id, client_address(request))
    return web.json_response(minutes_view(row))


@routes.get("/api/consults/{consult_id}/fhir")
async def get_fhir(request: web.Request) -> web.Response:
    consult, _ = await _readable(request, "consult.fhir")
    services = services_of(request)
    signed = await signatures.for_export(services, consult)
    bundle = fhir.bundle(await record.build(services.db, consult), f"{request.scheme}://{request.host}", signed)
    return web.json_response(bundle, content_type="application/fhir+json")


@dataclass(frozen=True)
class Allowance:
    """How many more attachment bytes an upload may bring, and the refusal beyond them."""

    bytes: int
    code: ErrorCode
    message: str


def allowance(consult_used: int, consult_cap: int, user_used: int, user_cap: int) -> Allowance:
    """The tighter of the consult's cap (`too_large`: the record is full) and the uploader's
    daily cap (`rate_limited`: it frees up as the day's uploads age past 24 hours)."""
    for_consult = Allowance(
        max(consult_cap - consult_used, 0),
        "too_large",
        f"a consult's attachments hold at most {consult_cap} bytes; {max(consult_cap - consult_used, 0)} are left",
    )
    for_user = Allowance(
        max(user_cap - user_used, 0),
        "rate_limited",
        f"one user uploads at most {user_cap} bytes of attachments in 24 hours; "
        f"{max(user_cap - user_used, 0)} are left now",
    )
    return for_consult if for_consult.bytes <= for_user.bytes else for_user


async def _attachment_allowance(services: Services, consult_id: str, user_id: str) -> Allowance:
    """Read from the stored sizes (ATTACHMENT_BYTES_PER_CONSULT, ATTACHMENT_BYTES_PER_USER_DAY)."""
    since = utcnow() - timedelta(hours=24)
    async with services.db.session() as session:
        consult_used = await session.scalar(
            select(func.coalesce(func.sum(Attachment.size), 0)).where(Attachment.consult_id == consult_id)
        )
        user_used = await session.scalar(
            select(func.coalesce(func.sum(Attachment.size), 0)).where(
                Attachment.uploader_id == user_id, Attachment.created_at >= since
            )
        )
    settings = services.settings
    found = allowance(
        int(consult_used or 0),
        settings.attachment_bytes_per_consult,
        int(user_used or 0),
        settings.attachment_bytes_per_user_day,
    )
    if found.bytes <= 0:
        raise AppError(found.code, found.message)
    return found


def upload_name(part: BodyPartReader) -> str:
    """The file's name as the user chose it. aiohttp's reader already decodes RFC 2231/5987
    `filename*=UTF-8''…`; a client that percent-encodes UTF-8 in the plain `filename` (aiohttp's
    own client does: `Phim%20ph%E1%BB%95i.png`) is decoded too, so a Vietnamese name is stored as
    written. Anything that does not decode as UTF-8 is kept as sent, then cleaned like any name."""
    name = part.filename or ""
    if re.search(r"%[0-9A-Fa-f]{2}", name):
        try:
            name = unquote(name, errors="strict")
        except UnicodeDecodeError:
            pass
    # NFC: a name typed on macOS arrives decomposed (o + ̂ + ̉), whose marks are not word characters.
    return unicodedata.normalize("NFC", name[:1000])


def _safe_name(name: str, extension: str) -> str:
    stem = re.sub(r"[^\w.\- ]+", "_", Path(name).stem, flags=re.UNICODE).strip(" .")[:80] or "tep"
    return stem + extension


def content_disposition(filename: str) -> str:
    """`attachment` with the file's name twice (RFC 6266): an ASCII fallback without diacritics
    (`phim-phổi.png` → `phim-phoi.png`) for old clients, and the name itself, UTF-8 and
    percent-encoded (RFC 8187), which browsers prefer."""
    plain = unicodedata.normalize("NFKD", filename.replace("đ", "d").replace("Đ", "D"))
    fallback = "".join(c for c in plain if not unicodedata.combining(c)).encode("ascii", "replace").decode()
    fallback = re.sub(r'[?"\\\x00-\x1f]', "_", fallback)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@routes.post("/api/consults/{consult_id}/attachments")
async def add_attachment(request: web.Request) -> web.Response:
    account = await require_account(request)
    services = services_of(request)
    consult = await consult_for(services, account, request.match_info["consult_id"], write=True)
    if consult.status not in ("active", "ended"):
        raise AppError("conflict", f"attachments are added once the consult is accepted; it is {consult.status}")
    if not request.content_type.startswith("multipart/"):
        raise AppError("invalid", "send the file as multipart/form-data in a field named 'file'")
    allowance = await _attachment_allowance(services, consult.id, account.id)
    # The stream stops at whichever comes first: the size of one file or what the caps leave.
    limit = min(MAX_ATTACHMENT_BYTES, allowance.bytes)
    try:
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and getattr(part, "name", None) != "file":
            part = await reader.next()
        if not isinstance(part, BodyPartReader):
            raise AppError("invalid", "send the file in a field named 'file'")
        sha256, size, content_type, extension = await attachments.receive(services, part, limit)
    except BlobTooLarge:
        if limit < MAX_ATTACHMENT_BYTES:
            raise AppError(allowance.code, allowance.message) from None
        raise AppError("too_large", "an attachment is at most 10 MB") from None
    except ValueError:  # aiohttp's multipart reader: no boundary, a boundary it never finds, ...
        raise AppError("invalid", "the multipart/form-data body is malformed") from None
    attachment_id = new_id()
    item = Attachment(
        id=attachment_id,
        consult_id=consult.id,
        filename=_safe_name(upload_name(part) or "tep", extension),
        content_type=content_type,
        size=size,
        sha256=sha256,
        uploader_id=account.id,
        created_at=utcnow(),
    )
    async with services.db.session() as session, session.begin():
        session.add(item)
    await audit.record(
        services.db, account.id, "attachment.add", "consult", consult.id, client_address(request), item.id
    )
    view = attachment_view(item, account.person())
    added = {"consult_id": consult.id, "attachment": view}
    await outbox.send(services, [Event("attachment:added", added, To.parties(consult))])
    return web.json_response({"attachment": view}, status=201)


@routes.get("/api/consults/{consult_id}/attachments/{attachment_id}")
async def get_attachment(request: web.Request) -> web.StreamResponse:
    consult, _ = await _readable(request, "attachment.read")
    services = services_of(request)
    async with services.db.session() as session:
        item = await session.get(Attachment, request.match_info["attachment_id"])
    if item is None or item.consult_id != consult.id:
        raise AppError("not_found", "no such attachment")
    blob = await attachments.open_file(services, item)
    response = web.StreamResponse(
        headers={
            "Content-Disposition": content_disposition(item.filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )
    response.content_type = item.content_type
    response.content_length = blob.size
    try:
        await response.prepare(request)
        async for chunk in blob:
            await response.write(chunk)
    except BlobDamaged:
        # Changed on disk after the check: the response ends short of its length, never whole.
        if request.transport is not None:
            request.transport.close()
        return response
    finally:
        blob.close()
    await response.write_eof()
    return response
