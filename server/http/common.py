"""What every HTTP handler shares: the error middleware, JSON bodies, the caller's account."""

from __future__ import annotations

import errno
import json
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from server.contract.errors import AppError
from server.contract.validation import Payload, parse, parse_instant
from server.http import addresses
from server.live import ratelimit
from server.policy.auth import PlaybackTicket, Token, read_playback_ticket, read_token
from server.records.users import Account, load_account
from server.runtime.services import Services
from server.runtime.storage import storage_unavailable

log = logging.getLogger("telerounds.http")

SERVICES = web.AppKey("services", Services)
MAX_JSON_BYTES = 256 * 1024

P = TypeVar("P", bound=Payload)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


def error_response(error: AppError) -> web.Response:
    body = {"ok": False, "error": {"code": error.code, "message": error.message}}
    response = web.json_response(body, status=error.http_status)
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """AppError → its status and JSON; HTTP errors → JSON; anything else → 500, logged, no details."""
    try:
        response = await handler(request)
    except AppError as error:
        response = error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        body = {"ok": False, "error": {"code": _code_for(exc.status), "message": exc.reason}}
        response = web.json_response(body, status=exc.status)
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
            # A static file's name longer than the file system allows: there is no such file.
            response = error_response(AppError("not_found", "no such file"))
        elif not storage_unavailable(exc):
            log.exception("unhandled error", extra={"path": request.path})
            body = {"ok": False, "error": {"code": "unavailable", "message": "internal error; it has been logged"}}
            response = web.json_response(body, status=500)
        else:
            # The database or Redis is down or locked: nothing was done; the client may retry.
            log.warning("storage unavailable: %s", type(exc).__name__, extra={"path": request.path})
            response = error_response(AppError("unavailable", "the service cannot reach its storage now; try again"))
    route = request.match_info.route.resource
    services_of(request).metrics.http_requests.labels(
        request.method, route.canonical if route is not None else "unmatched", str(response.status)
    ).inc()
    return response


_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
}


def _code_for(status: int) -> str:
    return _CODES.get(status, "invalid" if status < 500 else "unavailable")


async def read_json(request: web.Request, model: type[P]) -> P:
    """The request body parsed as JSON and validated against `model`."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise AppError("too_large", f"the body must be at most {MAX_JSON_BYTES} bytes")
    # One read() returns what has arrived so far, not the whole body: read up to the limit.
    raw = bytearray()
    while len(raw) <= MAX_JSON_BYTES and (chunk := await request.content.read(MAX_JSON_BYTES + 1 - len(raw))):
        raw.extend(chunk)
    if len(raw) > MAX_JSON_BYTES:
        raise AppError("too_large", f"the body must be at most {MAX_JSON_BYTES} bytes")
    try:
        data: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
        raise AppError("invalid", "the body must be valid JSON") from None
    return parse(model, data)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# The request's account, once read (by the role gate in server/runtime/app.py, before the handler),
# the sign-in it came with (a bearer token's), or the playback ticket it came with instead.
ACCOUNT = web.RequestKey("account", Account)
TOKEN = web.RequestKey("token", Token)
TICKET = web.RequestKey("ticket", PlaybackTicket)

# Routes that take a playback ticket (`?ticket=`) in place of the bearer token: the file a
# `<video src>` plays, which cannot send a header (server/http/recordings.py).
TICKETED_ROUTES = frozenset({"/api/recordings/{recording_id}/media"})
MAX_TICKET_CHARS = 1000  # a ticket is about 300; anything longer is not one


async def require_account(request: web.Request) -> Account:
    """The signed-in caller; `unauthorized` without a valid bearer token (or, on a route of
    `TICKETED_ROUTES`, a valid playback ticket for its recording, `?ticket=`: the user who asked
    for it, while their sign-in holds; `forbidden` for a ticket of another recording). Each signed-in request
    takes one token of the user's event bucket, the one their Socket.IO events draw from
    (`rate_limited`, 429 with `Retry-After`, when it is empty): a user flooding the HTTP API
    slows down only themselves, as on the socket."""
    if ACCOUNT in request:
        return request[ACCOUNT]
    services = services_of(request)
    settings = services.settings
    ticket = request.query.get("ticket")
    resource = request.match_info.route.resource
    if ticket is not None and resource is not None and resource.canonical in TICKETED_ROUTES:
        if len(ticket) > MAX_TICKET_CHARS:
            raise AppError("unauthorized", "the playback link is not valid")
        held = read_playback_ticket(settings.secret_key, ticket, request.match_info["recording_id"])
        request[TICKET] = held
        token = held.token
    else:
        token = read_token(settings.secret_key, bearer_token(request))
    account = await load_account(services, token.user_id, token.generation, token.id)
    await ratelimit.take(
        services.redis,
        ratelimit.user_events(account.id),
        settings.rate_events_burst,
        settings.rate_events_per_s,
        "too many requests; slow down",
    )
    request[ACCOUNT] = account
    request[TOKEN] = token
    return account


def client_address(request: web.Request) -> str:
    """The client's address, through trusted proxies (see `server.http.addresses`): what the audit
    log records and sign-in throttles by. Socket.IO reads its connect request's address here too."""
    return addresses.client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), services_of(request).settings.trusted_proxies
    )


def query_time(request: web.Request, name: str) -> datetime | None:
    """An optional ISO 8601 date or time from the query string (`validation.parse_instant`: a bare
    date is midnight in Vietnam, a time without an offset is UTC)."""
    raw = request.query.get(name)
    return parse_instant(name, raw) if raw else None


PRINTABLE_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
)


def printable_page(html: str) -> web.Response:
    """A printable page (minutes, reports): its stylesheet and Print button script from
    /static (server/actions/printable.py), nothing inline, nothing from elsewhere."""
    return web.Response(
        text=html,
        content_type="text/html",
        headers={
            "Content-Security-Policy": PRINTABLE_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
