"""The `/monitor` namespace: supervisors get `monitor:snapshot`, then `monitor:update`.

Every update is the whole board again, not a difference: boards are small, and a lost
update (the Redis manager delivers at most once) is healed by the next one. Updates are
coalesced: changes only mark the board dirty, and each instance sends at most one update every
`BOARD_UPDATE_INTERVAL_S` (0.5 s), plus one every `BOARD_REFRESH_S` (15 s) for what changes
without an event (durations, a crashed instance's users going offline). Only the boards that
some supervisor has open, on any instance, are built (`board.watched`): with none open, a
change costs nothing, so a burst of clinicians connecting does not read the network each time.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import socketio

from server import outbox
from server.actions import board
from server.outbox import MONITOR, Event, To, board_room
from server.policy.scope import Scope, hospital_scope
from server.records.users import Account
from server.runtime.loops import every
from server.runtime.services import Services
from signaling.router import Router, admit, client_event, refused_while_storage_down, token_id

log = logging.getLogger("telerounds.monitor")

NAMESPACE = MONITOR
router = Router(NAMESPACE)


def attach(sio: socketio.AsyncServer, services: Services) -> None:
    # The boards open on this instance: socket id -> the scope it watches.
    watching: dict[str, Scope] = {}

    async def connect(sid: str, environ: Any = None, auth: Any = None, *extra: Any) -> dict[str, Any] | None:
        # Any arity: a client's event named "connect" arrives here with its own arguments.
        if (refused := client_event(sio, sid, NAMESPACE, "connect")) is not None:
            return refused
        async with refused_while_storage_down():
            account = await admit(services, auth, NAMESPACE)
            scope = hospital_scope(account)
            await board.watch(services.redis, scope, sid, services.settings.presence_ttl_s)
        await sio.save_session(sid, {"account": account, "token_id": token_id(services, auth)}, namespace=NAMESPACE)
        await sio.enter_room(sid, board_room(scope), namespace=NAMESPACE)
        watching[sid] = scope
        services.metrics.sockets.labels(NAMESPACE).inc()
        sio.start_background_task(_send_snapshot, services, sid, account)
        return None

    async def disconnect(sid: str, reason: Any = None, *extra: Any) -> dict[str, Any] | None:
        if (refused := client_event(sio, sid, NAMESPACE, "disconnect")) is not None:
            return refused
        services.metrics.sockets.labels(NAMESPACE).dec()
        if sid in watching:
            await board.unwatch(services.redis, watching.pop(sid), sid)
        return None

    sio.on("connect", connect, namespace=NAMESPACE)
    sio.on("disconnect", disconnect, namespace=NAMESPACE)
    router.attach(sio, services)
    services.background.append(lambda: _updates(services, watching))
    services.background.append(lambda: _keep_watching(services, watching))


async def _send_snapshot(services: Services, sid: str, account: Account) -> None:
    try:
        snapshot = await board.build(services, hospital_scope(account))
        await outbox.send(services, [Event("monitor:snapshot", snapshot, To.socket(sid, NAMESPACE))])
    except Exception:
        log.exception("monitor:snapshot failed", extra={"sid": sid})


async def _keep_watching(services: Services, watching: dict[str, Scope]) -> None:
    ttl_s = services.settings.presence_ttl_s
    await every(ttl_s / 3, lambda: board.keep_watching(services.redis, watching, ttl_s), "board watchers")


async def _updates(services: Services, watching: dict[str, Scope]) -> None:
    last = time.monotonic()
    refresh_s = services.settings.board_refresh_s

    async def send() -> None:
        nonlocal last
        if not services.board_dirty and (time.monotonic() - last < refresh_s or not watching):
            # A change made here is sent at once, wherever its supervisors are connected; the
            # periodic refresh is for this instance's own supervisors only (idle, it was a
            # third of an instance's CPU).
            return
        services.board_dirty = False
        last = time.monotonic()
        scopes = await board.watched(services.redis)
        if not scopes:  # no board open anywhere; one opened later gets its snapshot at connect
            return
        # One read of the network per round; every open board is a view of it.
        network = await board.load(services)
        await outbox.send(
            services, [Event("monitor:update", board.view(network, scope), To.board(scope)) for scope in scopes]
        )
        services.metrics.board_updates.inc()

    await every(services.settings.board_update_interval_s, send, "monitor:update")
