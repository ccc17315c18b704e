"""The `/monitor` namespace: supervisors get `monitor:snapshot`, then `monitor:update`."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from server.errors import AppError
from server.services import Services
from server.snapshot import monitor_snapshot
from server.users import Account
from signaling.router import Router, authenticate

log = logging.getLogger("telerounds.monitor")

NAMESPACE = "/monitor"
router = Router(NAMESPACE)


def attach(sio: socketio.AsyncServer, services: Services) -> None:
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        account = await authenticate(services, auth)
        if account.role != "supervisor":
            raise socketio.exceptions.ConnectionRefusedError(
                AppError("forbidden", "the monitor is for supervisors").as_ack()["error"]
            )
        await sio.save_session(sid, {"account": account}, namespace=NAMESPACE)
        await sio.enter_room(sid, "monitor", namespace=NAMESPACE)
        services.metrics.sockets.labels(NAMESPACE).inc()
        sio.start_background_task(_send_snapshot, sio, services, sid, account)

    async def disconnect(sid: str, reason: Any = None) -> None:
        services.metrics.sockets.labels(NAMESPACE).dec()

    sio.on("connect", connect, namespace=NAMESPACE)
    sio.on("disconnect", disconnect, namespace=NAMESPACE)
    router.attach(sio, services)


async def _send_snapshot(sio: socketio.AsyncServer, services: Services, sid: str, account: Account) -> None:
    try:
        await sio.emit("monitor:snapshot", await monitor_snapshot(services, account), to=sid, namespace=NAMESPACE)
    except Exception:
        log.exception("monitor:snapshot failed", extra={"sid": sid})
