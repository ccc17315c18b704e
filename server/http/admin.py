"""`/api/admin/...`: hospitals, sister links, accounts, the roster and the audit log. Admins only."""

from __future__ import annotations

import asyncio

from aiohttp import BodyPartReader, web

from server.actions import admin
from server.contract.errors import AppError
from server.contract.validation import MAX_PIN_CHARS, parse_text
from server.contract.views import certificate_view
from server.http.common import client_address, query_time, read_json, require_account, services_of
from server.http.consults import REF_SEARCH_MAX
from server.live import revocation
from server.records import signing_keys
from server.records.models import utcnow
from server.records.users import Account

routes = web.RouteTableDef()


async def require_admin(request: web.Request) -> Account:
    """The signed-in admin. Other roles never get here: every `/api/admin` route's rule in
    server/policy/permissions.py names admins only, and the role gate applies it before any handler."""
    return await require_account(request)


def _query(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return value if value else None


def _flag(request: web.Request, name: str) -> bool | None:
    raw = _query(request, name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise AppError("invalid", f"{name} must be true or false")
    return raw == "true"


def _limit(request: web.Request) -> int:
    raw = _query(request, "limit")
    if raw is None:
        return 50
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= admin.AUDIT_PAGE_MAX:
        raise AppError("invalid", f"limit must be a whole number from 1 to {admin.AUDIT_PAGE_MAX}")
    return int(raw)


# Hospitals.


@routes.get("/api/admin/hospitals")
async def list_hospitals(request: web.Request) -> web.Response:
    await require_admin(request)
    return web.json_response({"hospitals": await admin.hospitals(services_of(request).db)})


@routes.post("/api/admin/hospitals")
async def create_hospital(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    body = await read_json(request, admin.NewHospital)
    hospital = await admin.create_hospital(services_of(request).db, actor, body, client_address(request))
    return web.json_response({"hospital": hospital}, status=201)


@routes.patch("/api/admin/hospitals/{hospital_id}")
async def update_hospital(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    body = await read_json(request, admin.HospitalChange)
    services = services_of(request)
    hospital = await admin.update_hospital(
        services.db, actor, request.match_info["hospital_id"], body, client_address(request)
    )
    # What its people see may change with it (a supervisor's scope): their open sockets re-check.
    staff = await admin.users(services.db, hospital_id=hospital["id"])
    await revocation.reauthorize(services, [user["id"] for user in staff])
    return web.json_response({"hospital": hospital})


# Sister links.


@routes.get("/api/admin/sister-links")
async def list_links(request: web.Request) -> web.Response:
    await require_admin(request)
    return web.json_response({"links": await admin.sister_links(services_of(request).db)})


@routes.post("/api/admin/sister-links")
async def create_link(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    body = await read_json(request, admin.NewLink)
    link = await admin.link(services_of(request).db, actor, body, client_address(request))
    return web.json_response({"link": link}, status=201)


@routes.delete("/api/admin/sister-links/{upper_id}/{lower_id}")
async def delete_link(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    link = await admin.unlink(
        services_of(request).db,
        actor,
        request.match_info["upper_id"],
        request.match_info["lower_id"],
        client_address(request),
    )
    return web.json_response({"link": link})


# Accounts.


@routes.get("/api/admin/users")
async def list_users(request: web.Request) -> web.Response:
    await require_admin(request)
    role = _query(request, "role")
    found = await admin.users(
        services_of(request).db,
        role=admin.known_role(role) if role is not None else None,
        hospital_id=_query(request, "hospital_id"),
        active=_flag(request, "active"),
    )
    return web.json_response({"users": found})


@routes.post("/api/admin/users")
async def create_user(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    body = await read_json(request, admin.NewUser)
    user = await admin.create_user(services_of(request).db, actor, body, client_address(request))
    return web.json_response({"user": user}, status=201)


@routes.patch("/api/admin/users/{user_id}")
async def update_user(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    body = await read_json(request, admin.UserChange)
    services = services_of(request)
    user = await admin.update_user(services.db, actor, request.match_info["user_id"], body, client_address(request))
    # Moved to another hospital: the old one's calls and notes stop reaching their open sockets.
    await revocation.reauthorize(services, [user["id"]])
    return web.json_response({"user": user})


@routes.post("/api/admin/users/{user_id}/deactivate")
async def deactivate_user(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    user = await admin.deactivate(services_of(request), actor, request.match_info["user_id"], client_address(request))
    return web.json_response({"user": user})


@routes.post("/api/admin/users/{user_id}/activate")
async def activate_user(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    user = await admin.activate(services_of(request), actor, request.match_info["user_id"], client_address(request))
    return web.json_response({"user": user})


@routes.post("/api/admin/users/{user_id}/password")
async def set_password(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    body = await read_json(request, admin.NewPassword)
    user = await admin.set_password(
        services_of(request), actor, request.match_info["user_id"], body, client_address(request)
    )
    return web.json_response({"user": user})


# The roster and the audit log.


@routes.get("/api/admin/roster")
async def roster(request: web.Request) -> web.Response:
    await require_admin(request)
    return web.json_response({"specialists": await admin.roster(services_of(request))})


@routes.get("/api/admin/audit")
async def audit_log(request: web.Request) -> web.Response:
    await require_admin(request)
    query = admin.AuditQuery(
        user_id=_query(request, "user_id"),
        consult_id=_query(request, "consult_id"),
        start=query_time(request, "from"),
        end=query_time(request, "to"),
        limit=_limit(request),
        before=_query(request, "before"),
        action=admin.known_action(_query(request, "action")),
        patient_ref=parse_text("patient_ref", request.query.get("patient_ref"), REF_SEARCH_MAX),
    )
    return web.json_response(await admin.audit_page(services_of(request).db, query))


# Signing certificates.

FORM_PARTS = 4  # parts of the upload form read at most
MAX_PASSWORD_BYTES = 4 * MAX_PIN_CHARS


async def _part(part: BodyPartReader, limit: int, what: str) -> bytes:
    """A form part's bytes, refused beyond `limit` without reading further."""
    data = bytearray()
    while chunk := await part.read_chunk(16 * 1024):
        data += chunk
        if len(data) > limit:
            raise AppError("too_large", f"{what} is at most {limit} bytes")
    return bytes(data)


@routes.post("/api/admin/users/{user_id}/certificate")
async def upload_certificate(request: web.Request) -> web.Response:
    """A user's signing key and certificate (multipart: `file` = PKCS#12, `password` = the PIN
    the user will give when signing). Checked, sealed at rest; the password is not kept."""
    actor = await require_admin(request)
    services = services_of(request)
    if not request.content_type.startswith("multipart/"):
        raise AppError("invalid", "send multipart/form-data with the fields 'file' (PKCS#12) and 'password'")
    found: dict[str, bytes] = {}
    try:
        reader = await request.multipart()
        for _ in range(FORM_PARTS):
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or part.name not in ("file", "password"):
                raise AppError("invalid", "only the fields 'file' and 'password' are expected")
            if part.name == "file":
                found["file"] = await _part(part, signing_keys.MAX_PKCS12_BYTES, "file")
            else:
                found["password"] = await _part(part, MAX_PASSWORD_BYTES, "password")
    except ValueError:  # aiohttp's multipart reader: no boundary, a boundary it never finds, ...
        raise AppError("invalid", "the multipart/form-data body is malformed") from None
    try:
        pin = found.get("password", b"").decode()
    except UnicodeDecodeError:
        raise AppError("invalid", "password: not UTF-8 text") from None
    user = await admin.signer(services, request.match_info["user_id"])
    opened = await asyncio.to_thread(signing_keys.check_upload, found.get("file", b""), pin, utcnow())
    row = await signing_keys.store(
        services.db, services.settings, user, found["file"], opened, actor.id, client_address(request)
    )
    return web.json_response({"certificate": certificate_view(row)}, status=201)
