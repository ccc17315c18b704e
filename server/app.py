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


def create_app(services: Services, redis_url: str) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=12 * 1024 * 1024)
    app[SERVICES] = services
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
