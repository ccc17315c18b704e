"""The consult record over HTTP: list, record, minutes, FHIR export, attachments. Every read is audited."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from aiohttp import BodyPartReader, web
from sqlalchemy import or_, select

from server import audit, consults, dispatch, record
from server.access import consult_for
from server.api.http import client_address, printable_page, query_time, require_account, services_of
from server.errors import AppError
from server.records import Attachment, Consult, User, new_id, utcnow
from server.scope import hospital_scope

routes = web.RouteTableDef()

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
# The type comes from the first bytes of the content, never from the name or the client's header.
SIGNATURES = [
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"%PDF-", "application/pdf", ".pdf"),
]


@routes.get("/api/consults")
async def list_consults(request: web.Request) -> web.Response:
    account = await require_account(request)
    services = services_of(request)
    query = select(Consult).order_by(Consult.created_at.desc()).limit(500)
    status = request.query.get("status")
    if status:
        if status not in ("queued", "offered", "active", "ended", "cancelled"):
            raise AppError("invalid", "status must be queued, offered, active, ended or cancelled")
        query = query.where(Consult.status == status)
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
    elif (scope := hospital_scope(account)) is not None:
        # A supervisor attached to a hospital: the consults it asked or answered, as on the board.
        answered_there = select(User.id).where(User.hospital_id == scope)
        query = query.where(or_(Consult.hospital_id == scope, Consult.specialist_id.in_(answered_there)))
    async with services.db.session() as session:
        found = list((await session.scalars(query)).all())
    ids = {i for c in found for i in (c.requester_id, c.specialist_id, c.named_specialist_id)}
    who = await consults.people(services.db, ids)
    return web.json_response({"consults": [consults.view(c, who) for c in found]})


async def _readable(request: web.Request, action: str) -> tuple[Consult, str]:
    account = await require_account(request)
    services = services_of(request)
    consult = await consult_for(services, account, request.match_info["consult_id"], write=False)
    await audit.record(services.db, account.id, action, "consult", consult.id, client_address(request))
    return consult, account.id


@routes.get("/api/consults/{consult_id}")
async def get_record(request: web.Request) -> web.Response:
    consult, _ = await _readable(request, "consult.read")
    return web.json_response(await record.build(services_of(request).db, consult))


@routes.get("/api/consults/{consult_id}/minutes")
async def get_minutes(request: web.Request) -> web.Response:
    consult, _ = await _readable(request, "consult.minutes")
    html = record.minutes_html(await record.build(services_of(request).db, consult))
    return printable_page(html)


@routes.get("/api/consults/{consult_id}/fhir")
async def get_fhir(request: web.Request) -> web.Response:
    consult, _ = await _readable(request, "consult.fhir")
    bundle = record.fhir_bundle(
        await record.build(services_of(request).db, consult), f"{request.scheme}://{request.host}"
    )
    return web.json_response(bundle, content_type="application/fhir+json")


def _safe_name(name: str, extension: str) -> str:
    stem = re.sub(r"[^\w.\- ]+", "_", Path(name).stem, flags=re.UNICODE).strip(" .")[:80] or "tep"
    return stem + extension


@routes.post("/api/consults/{consult_id}/attachments")
async def add_attachment(request: web.Request) -> web.Response:
    account = await require_account(request)
    services = services_of(request)
    consult = await consult_for(services, account, request.match_info["consult_id"], write=True)
    if consult.status not in ("active", "ended"):
        raise AppError("conflict", f"attachments are added once the consult is accepted; it is {consult.status}")
    if not request.content_type.startswith("multipart/"):
        raise AppError("invalid", "send the file as multipart/form-data in a field named 'file'")
    try:
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and getattr(part, "name", None) != "file":
            part = await reader.next()
        if not isinstance(part, BodyPartReader):
            raise AppError("invalid", "send the file in a field named 'file'")
        data = bytearray()
        while chunk := await part.read_chunk(64 * 1024):
            data.extend(chunk)
            if len(data) > MAX_ATTACHMENT_BYTES:
                raise AppError("too_large", "an attachment is at most 10 MB")
    except ValueError:  # aiohttp's multipart reader: no boundary, a boundary it never finds, ...
        raise AppError("invalid", "the multipart/form-data body is malformed") from None
    kind = next(((t, ext) for sig, t, ext in SIGNATURES if data.startswith(sig)), None)
    if kind is None:
        raise AppError("invalid", "only JPEG, PNG and PDF files can be attached")
    content_type, extension = kind
    attachment_id = new_id()
    folder = services.settings.var_dir / "attachments" / consult.id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / attachment_id
    path.write_bytes(bytes(data))
    item = Attachment(
        id=attachment_id,
        consult_id=consult.id,
        filename=_safe_name(part.filename or "tep", extension),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploader_id=account.id,
        created_at=utcnow(),
    )
    async with services.db.session() as session, session.begin():
        session.add(item)
    await audit.record(
        services.db, account.id, "attachment.add", "consult", consult.id, client_address(request), item.id
    )
    view = record.attachment_view(item)
    in_call = {p.user["id"] for p in await services.rooms.peers(f"consult:{consult.id}")}
    await dispatch.emit(
        services,
        "attachment:added",
        {"consult_id": consult.id, "attachment": view},
        consults.involved(consult) | in_call,
    )
    return web.json_response({"attachment": view}, status=201)


@routes.get("/api/consults/{consult_id}/attachments/{attachment_id}")
async def get_attachment(request: web.Request) -> web.StreamResponse:
    consult, _ = await _readable(request, "attachment.read")
    services = services_of(request)
    async with services.db.session() as session:
        item = await session.get(Attachment, request.match_info["attachment_id"])
    if item is None or item.consult_id != consult.id:
        raise AppError("not_found", "no such attachment")
    path = services.settings.var_dir / "attachments" / consult.id / item.id
    if not path.exists():
        raise AppError("not_found", "the file of this attachment is missing")
    return web.Response(
        body=path.read_bytes(),
        content_type=item.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{item.filename.encode("ascii", "replace").decode()}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )
