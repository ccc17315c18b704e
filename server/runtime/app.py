"""The aiohttp application: HTTP API, static browser app and Socket.IO on one port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from server import http as api
from server.contract.validation import refuse_nul
from server.http.common import SERVICES, Handler, errors_middleware, require_account
from server.policy import permissions
from server.records import attachments
from server.runtime import logs
from server.runtime.services import Services
from server.runtime.settings import Settings
from signaling.server import create_sio

STATIC = Path(__file__).resolve().parent.parent.parent / "static"

# The browser app runs only its own scripts and styles: no inline script or style, no framing.
# Media and downloads are blob: URLs; signaling is a WebSocket to this same service.
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


# Everything else (JSON, CSV, files, scripts): nothing may load from it as a page, or frame it.
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response: no type sniffing, no referrer, no framing, a content security policy."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path == "/static/sw.js":
        # The app shell's worker serves the page at / from /static/, and fetches the shell from
        # this origin: a worker runs under its own script's policy, which must let it connect.
        headers["Service-Worker-Allowed"] = "/"
        headers["Content-Security-Policy"] = "default-src 'none'; connect-src 'self'"
    if response.status == 304:
        # A browser merges a 304's headers into the page it cached: a policy chosen here by the
        # 304's (empty) type would replace the page's own and break it. The cached one stands.
        return
    # Responses that set their own policy (the printable minutes, attachments) keep it, but
    # none of them may be framed: clickjacking needs a frame, and the policy is what stops it.
    csp = headers.get("Content-Security-Policy") or (APP_CSP if response.content_type == "text/html" else OTHER_CSP)
    if "frame-ancestors" not in csp:
        csp += "; frame-ancestors 'none'"
    headers["Content-Security-Policy"] = csp


@web.middleware
async def _no_nul(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A NUL character in the path's parameters or the query is `invalid`, as in a body
    (server/contract/validation.py): an id with one reached the database, which PostgreSQL refuses."""
    refuse_nul(dict(request.match_info), "path")
    refuse_nul([*request.query.keys(), *request.query.values()], "query")
    return await handler(request)


@web.middleware
async def _role_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The role gate of server/policy/permissions.py, before any handler runs: `unauthorized` without a
    valid token, `forbidden` for a role the route's rule does not name (or a route without a rule)."""
    match = request.match_info
    resource = match.route.resource
    if match.http_exception is None and resource is not None:  # unmatched paths are 404/405 as they are
        rule = permissions.route_rule(request.method, resource.canonical)
        if rule.relation != "public":
            account = await require_account(request)
            permissions.check_role(rule, account.role, f"{request.method} {resource.canonical}")
    return await handler(request)


def hide_server_banner() -> None:
    """No `Server: Python/3.x aiohttp/3.x` header on any response: it tells a scanner which
    versions to try. aiohttp adds it while preparing every response, its own error pages
    for malformed requests included (those never reach the app's `on_response_prepare`), and
    offers no setting to leave it out: it is taken off right after, once for the process."""
    original = web.StreamResponse._prepare_headers
    if getattr(original, "hides_server_banner", False):
        return

    async def prepare_headers(self: web.StreamResponse) -> None:
        await original(self)
        self.headers.popall(hdrs.SERVER, None)

    prepare_headers.hides_server_banner = True  # type: ignore[attr-defined]
    web.StreamResponse._prepare_headers = prepare_headers  # type: ignore[method-assign]


def server_options(settings: Settings) -> dict[str, Any]:
    """How the HTTP server runs the app, for `python -m server` and the tests alike.

    aiohttp closes a connection that has been idle for `keepalive_timeout`, counted from its
    connect or its last answer, unless a whole request line and headers arrived: a header timeout
    for slow half-sent requests (its default was 75 s under `run_app`, an hour otherwise)."""
    return {"keepalive_timeout": settings.http_header_timeout_s}


def create_app(services: Services, redis_url: str) -> web.Application:
    logs.quiet_client_errors()  # a malformed request is the client's error, not the server's
    hide_server_banner()
    app = web.Application(middlewares=[errors_middleware, _no_nul, _role_gate], client_max_size=12 * 1024 * 1024)
    app[SERVICES] = services
    app.on_response_prepare.append(_security_headers)
    api.add_routes(app)
    sio = create_sio(services, redis_url)
    sio.attach(app)
    # Attachment files an earlier version kept under this instance's var dir: into the shared store.
    services.background.append(lambda: attachments.adopt_all(services))

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)

    async def background(app: web.Application) -> AsyncIterator[None]:
        # Listen for other instances' messages from the start, so /readyz can report on it.
        if not sio.manager_initialized:
            sio.manager_initialized = True
            sio.manager.initialize()
        tasks = [asyncio.ensure_future(loop()) for loop in services.background]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Close every engine.io socket, including those refused at connect that the client
        # never closed, and stop engine.io's service task: neither may outlive the loop.
        for socket in list(sio.eio.sockets.values()):
            await socket.close(wait=False, abort=True)
        await sio.shutdown()
        await sio.manager.stop()
        await services.close()

    app.cleanup_ctx.append(background)
    return app
