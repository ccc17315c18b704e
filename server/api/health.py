"""`/healthz` (the process answers), `/readyz` (Redis and the database answer), `/metrics`."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text

from server.api.http import services_of
from server.matching import SPECIALTIES

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    services = services_of(request)
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(services.redis.ping(), timeout=2)
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    try:
        async with services.db.engine.connect() as connection:
            await asyncio.wait_for(connection.execute(text("SELECT 1")), timeout=2)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    manager = getattr(services.sio, "manager", None)
    if manager is not None:
        # Without the listener, events from other instances would silently not arrive.
        checks["pubsub"] = "ok" if getattr(manager, "listening", False) else "unavailable: not listening"
    ready = all(value == "ok" for value in checks.values())
    return web.json_response({"ok": ready, "checks": checks}, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    services = services_of(request)
    for specialty, waiting in (await services.live.queue_lengths(list(SPECIALTIES))).items():
        services.metrics.queue_length.labels(specialty).set(waiting)
    services.metrics.active_consults.set(len(await services.live.in_consult()))
    body = services.metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
