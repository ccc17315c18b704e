"""The Socket.IO server: authentication at connect, `session:state`, the handlers of each concern."""

from __future__ import annotations

import logging
from typing import Any

import socketio
from aiohttp import web

from server import outbox
from server.actions import dispatch, recovery, rounds
from server.actions import recording as recording_actions
from server.actions.snapshot import session_state
from server.http.common import client_address
from server.live import caps, keys, presence, revocation
from server.outbox import Event, To
from server.records import audit
from server.records.users import Account
from server.runtime import loops
from server.runtime.services import Services
from signaling import consults as consult_events
from signaling import monitor, reauthorize, recording, rtc
from signaling import notes as note_events
from signaling import presence as presence_events
from signaling import rounds as round_events
from signaling.packets import Server
from signaling.redis_manager import RedisManager
from signaling.router import Router, admit, client_event, refusal, refused_while_storage_down, token_id
from signaling.websocket import use_uncompressed_websocket

log = logging.getLogger("telerounds.signaling")

# An SDP may be up to 64 KB (refused with `too_large` beyond); larger messages close the socket.
MAX_MESSAGE_BYTES = 128 * 1024

# The event handlers of namespace "/", one router per concern.
ROUTERS: list[Router] = [
    presence_events.router,
    consult_events.router,
    rtc.router,
    note_events.router,
    round_events.router,
    recording.router,
]


def create_sio(services: Services, redis_url: str) -> socketio.AsyncServer:
    settings = services.settings
    sio = Server(  # python-socketio's, answering undecodable messages (signaling/packets.py)
        async_mode="aiohttp",
        # Always through Redis, so one instance and many behave alike.
        client_manager=RedisManager(redis_url),
        cors_allowed_origins=list(settings.allowed_origins) or None,  # None: same origin only
        max_http_buffer_size=MAX_MESSAGE_BYTES,
        # One event at a time per socket, in the order sent: a sender's signals stay in order.
        async_handlers=False,
        logger=False,
        engineio_logger=False,
    )
    use_uncompressed_websocket(sio)
    services.sio = sio
    sio.manager.on_reauthorize = lambda user_ids: reauthorize.users_here(services, user_ids)
    # This instance's live sockets by user, whose presence heartbeats it keeps alive.
    local: dict[str, str] = {}

    async def connect(sid: str, environ: Any = None, auth: Any = None, *extra: Any) -> dict[str, Any] | None:
        # Any arity: a client's event named "connect" arrives here with its own arguments.
        if (refused := client_event(sio, sid, "/", "connect")) is not None:
            return refused
        async with refused_while_storage_down():
            account = await admit(services, auth, "/")
            default: presence.Status = "available" if account.role == "specialist" else "away"
            most = settings.max_sockets_per_user
            if not await presence.connect(services.redis, account.id, sid, settings.presence_ttl_s, default, most):
                services.metrics.events.labels("connect", "rate_limited").inc()
                raise refusal(caps.sockets_refusal(settings))
        address = _address(environ)
        await sio.save_session(sid, {"account": account, "address": address, "token_id": token_id(services, auth)})
        await sio.enter_room(sid, keys.user_room(account.id))
        local[sid] = account.id
        services.metrics.sockets.labels("/").inc()
        services.board_changed()
        # After the handler returns the CONNECT packet goes out; state must follow it, not precede it.
        sio.start_background_task(_send_state, services, sid, account, address)
        return None

    async def disconnect(sid: str, reason: Any = None, *extra: Any) -> dict[str, Any] | None:
        if (refused := client_event(sio, sid, "/", "disconnect")) is not None:
            return refused
        session = await sio.get_session(sid)
        account: Account | None = session.get("account")
        local.pop(sid, None)
        await rtc.socket_gone(services, sid)
        if account is not None:
            await presence.disconnect(services.redis, account.id, sid)
            services.metrics.sockets.labels("/").dec()
            services.board_changed()
            if account.role == "specialist" and not await presence.online(services.redis, account.id):
                await dispatch.specialist_offline(services, account.id)
        return None

    sio.on("connect", connect)
    sio.on("disconnect", disconnect)
    for router in ROUTERS:
        router.attach(sio, services)
    monitor.attach(sio, services)
    services.background.append(lambda: _heartbeat(services, local))
    services.background.append(lambda: consult_events.offer_clock(services))
    services.background.append(lambda: rtc.grace_clock(services))
    services.background.append(lambda: recording_actions.watch_clock(services))
    services.background.append(lambda: rounds.clock(services))
    # Offers and the queue are only as good as what Redis still holds: rebuilt if it lost them.
    services.background.append(lambda: _recovery(services))
    return sio


async def _heartbeat(services: Services, local: dict[str, str]) -> None:
    """Keep this instance's sockets online; if the process dies they lapse after PRESENCE_TTL_S."""

    async def beat() -> None:
        by_user: dict[str, list[str]] = {}
        for sid, user_id in list(local.items()):
            by_user.setdefault(user_id, []).append(sid)
        # A deactivated user whose disconnect message was lost and who sends nothing would
        # still receive pushes (notes among them): close such sockets here too. Likewise a
        # user whose access changed, should the announcement of it be lost: re-checked here.
        standing = await revocation.standing_among(services.redis, set(by_user))
        for user_id in standing.revoked:
            for sid in by_user.pop(user_id):
                assert services.sio is not None
                await services.sio.disconnect(sid)
        await presence.heartbeat(services.redis, by_user, services.settings.presence_ttl_s)
        # After the presence: Redis restarted empty, every user here re-reads (once), which
        # must not make their presence lapse meanwhile.
        await reauthorize.stale_here(services, {u: standing.stamps[u] for u in by_user})

    await loops.every(services.settings.presence_ttl_s / 3, beat, "presence heartbeat")


async def _recovery(services: Services, interval_s: float = 1.0) -> None:
    """The live state's watch (`server/actions/recovery.py`), on every instance: a rebuild's
    events go out before this instance closes its connections, as they did when sent from it."""
    seen = recovery.Seen()

    async def tick() -> None:
        async with outbox.sending(services) as rebuilt:
            epoch = await recovery.live_epoch(services, rebuilt)
        if epoch is not None:  # None: another instance is rebuilding; look again at the next tick
            await recovery.follow_epoch(services, seen, epoch)
        async with outbox.sending(services) as reaped:
            await recovery.reap_lapsed(services, reaped)

    await loops.every(interval_s, tick, "recovery")


async def _send_state(services: Services, sid: str, account: Account, address: str) -> None:
    try:
        state = await session_state(services, account)
        # Audited before it is sent: which consults (and rounds) this user's screen was given.
        shown = [c["id"] for c in state["consults"]] + [o["consult"]["id"] for o in state["offers"]]
        rounds_shown = ",".join(r["round"]["id"] for r in state["rounds"])
        await audit.record_listing(
            services.db, account.id, "session.state", shown, address, f"rounds={rounds_shown}" if rounds_shown else ""
        )
        await outbox.send(services, [Event("session:state", state, To.socket(sid))])
        if account.role == "specialist":
            async with outbox.sending(services) as events:
                await dispatch.specialist_back(services, events, account.id)
    except Exception:
        log.exception("session:state failed", extra={"sid": sid})


def _address(environ: dict[str, Any]) -> str:
    """The client's address, read as for HTTP (`server.http.common.client_address`)."""
    request = environ.get("aiohttp.request")
    return client_address(request) if isinstance(request, web.Request) else ""
