"""The aiohttp application: HTTP API, static browser app and Socket.IO on one port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from server import api
from server.api.http import SERVICES, errors_middleware
from server.services import Services
from signaling.server import create_sio

STATIC = Path(__file__).resolve().parent.parent / "static"

# The browser app runs only its own scripts and styles: no inline script or style, no framing.
# Media and downloads are blob: URLs; signaling is a WebSocket to this same service.
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        # Pages that set their own policy (the printable minutes, the report) keep it.
        response.headers.setdefault("Content-Security-Policy", APP_CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")


def create_app(services: Services, redis_url: str) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=12 * 1024 * 1024)
    app[SERVICES] = services
    app.on_response_prepare.append(_security_headers)
    api.add_routes(app)
    sio = create_sio(services, redis_url)
    sio.attach(app)

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
