"""The floors the bench compares telerounds with, as small servers of their own.

python -m bench.floors relay PORT [REDIS_URL]   a bare python-socketio relay (the framework's floor)
python -m bench.floors echo PORT                a raw aiohttp WebSocket echo (the transport's floor)

The bare relay speaks the bench's part of the telerounds protocol, like bench/reference/server.js:
a token is required at connect (not checked), `consult:join` enters a room, `rtc:signal` is
relayed to one peer with an ack. No accounts, no Redis lookups, no validation models: what is
left is python-socketio itself (and its Redis manager when REDIS_URL is given).

Every server of the bench sends WebSocket frames uncompressed: telerounds declines
`permessage-deflate` (signaling/websocket.py), Node's socket.io has it off by default, and so
do both floors, so the figures compare the servers' own work.
"""

from __future__ import annotations

import sys
from typing import Any

import socketio
from aiohttp import WSMsgType, web

from signaling.websocket import use_uncompressed_websocket


def relay_app(redis_url: str | None) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, async_handlers=False, logger=False)
    use_uncompressed_websocket(sio)
    app = web.Application()
    sio.attach(app)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/readyz", ready)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not (isinstance(auth, dict) and isinstance(auth.get("token"), str) and auth["token"]):
            raise socketio.exceptions.ConnectionRefusedError({"code": "unauthorized"})

    @sio.on("consult:join")
    async def join(sid: str, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("consult_id"), str):
            return {"ok": False, "error": {"code": "invalid", "message": "consult_id is required"}}
        room = f"consult:{payload['consult_id']}"
        # Local participants only: enough for the bench, whose joins need only the ack's peer_id.
        others = [{"peer_id": peer} for peer, _ in sio.manager.get_participants("/", room)]
        await sio.enter_room(sid, room)
        return {"ok": True, "peer_id": sid, "peers": others}

    @sio.on("rtc:signal")
    async def signal(sid: str, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("to"), str) or "data" not in payload:
            return {"ok": False, "error": {"code": "invalid", "message": "consult_id, to and data are required"}}
        consult_id = payload.get("consult_id")
        if f"consult:{consult_id}" not in sio.rooms(sid):
            return {"ok": False, "error": {"code": "forbidden", "message": "join the call before signaling"}}
        await sio.emit("rtc:signal", {"consult_id": consult_id, "from": sid, "data": payload["data"]}, to=payload["to"])
        return {"ok": True}

    return app


def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", echo)
    app.router.add_get("/readyz", ready)
    return app


def main(argv: list[str]) -> int:
    kind, port = argv[0], int(argv[1])
    app = relay_app(argv[2] if len(argv) > 2 else None) if kind == "relay" else echo_app()
    try:  # the same event loop as telerounds itself runs on
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        import asyncio

        loop = asyncio.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
