"""`/healthz` (the process answers), `/readyz` (Redis, the database, pub/sub and the blob store work), `/metrics`."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from aiohttp import web
from sqlalchemy import text

from server.contract.errors import AppError
from server.http.common import bearer_token, services_of
from server.policy.matching import SPECIALTIES
from server.records.models import Database

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
        await asyncio.wait_for(_database_check(services.db), timeout=2)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        # Every instance must be able to store an attachment it receives.
        await asyncio.wait_for(services.blobs.check_writable(), timeout=2)
        checks["blobs"] = "ok"
    except Exception as exc:
        checks["blobs"] = f"unavailable: {type(exc).__name__}"
    manager = getattr(services.sio, "manager", None)
    if manager is not None:
        # Without the listener, events from other instances would silently not arrive: the
        # manager hears its own heartbeat through Redis (signaling/redis_manager.py).
        checks["pubsub"] = "ok" if manager.healthy() else "unavailable: not receiving"
    ready = all(value == "ok" for value in checks.values())
    return web.json_response({"ok": ready, "checks": checks}, status=200 if ready else 503)


async def _database_check(db: Database) -> None:
    """The database answers, and on SQLite it can also be written to.

    A SQLite file whose write lock another process holds still answers reads, while every
    write waits out the busy timeout and fails: take the write lock for an instant to see that.
    """
    async with db.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        if not db.is_sqlite:
            return
        busy_ms = int((await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar() or 0)
        await connection.exec_driver_sql("PRAGMA busy_timeout=1000")
        try:
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            await connection.exec_driver_sql("ROLLBACK")
        finally:
            await connection.exec_driver_sql(f"PRAGMA busy_timeout={busy_ms}")


def may_scrape(remote: str | None, token: str | None, metrics_token: str) -> bool:
    """Who reads `/metrics`: with METRICS_TOKEN set, a scraper sending it as a bearer token;
    without, only one on this host. The counts hold no names, but how busy each hospital's
    specialties are is not for the internet."""
    if metrics_token:
        return token is not None and hmac.compare_digest(token.encode(), metrics_token.encode())
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    services = services_of(request)
    if not may_scrape(request.remote, bearer_token(request), services.settings.metrics_token):
        raise AppError("forbidden", "metrics are for this host's scraper, or one sending METRICS_TOKEN")
    for specialty, waiting in (await services.live.queue_lengths(list(SPECIALTIES))).items():
        services.metrics.queue_length.labels(specialty).set(waiting)
    services.metrics.active_consults.set(len(await services.live.in_consult()))
    body = services.metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
