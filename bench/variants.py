"""`python -m bench.variants [--loop asyncio] [--relay original] [--routing targeted]`: telerounds
(`python -m server`) with one optimization taken back or one prototype added, so the bench
measures each step against the current code in the same run.

--loop asyncio       the standard event loop instead of uvloop
--relay original     `rtc:signal` as it was before issue 9: three Redis reads to find the two ends
                     and every delivery published to Redis, even to a socket on this instance
--routing targeted   a prototype of per-instance routing in the Redis manager (proposed for
                     signaling/redis_manager.py, which this file does not change): each socket id
                     names its instance, each instance also listens on a channel of its own, and
                     an emit to one socket goes to that socket's instance only, or straight to the
                     socket when it is here, instead of to every instance through one channel
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

import socketio

import server.__main__ as server_main
from server.errors import AppError
from signaling import redis_manager, rtc
from signaling import server as signaling_server
from signaling.router import Caller

# ---- the relay before issue 9 ------------------------------------------------------------------


async def original_rtc_signal(caller: Caller, payload: rtc.Signal) -> dict[str, Any]:
    room = rtc.room_name(payload.consult_id, payload.round_id)
    if isinstance(payload.data, rtc.SessionDescription) and len(payload.data.sdp) > rtc.MAX_SDP_CHARS:
        raise AppError("too_large", f"sdp must be at most {rtc.MAX_SDP_CHARS} characters")
    rooms = caller.services.rooms
    sender = await rooms.peer_of_sid(room, caller.sid)
    if sender is None:
        raise AppError("forbidden", "join the call before signaling")
    target = await rooms.peer(room, payload.to)
    if target is None or target.peer_id == sender.peer_id:
        raise AppError("not_found", "no such peer in this call")
    if target.dropped_at is not None:
        raise AppError("conflict", "that peer is reconnecting; it will send a new offer when back")
    key, ref = room.split(":", 1)
    assert caller.services.sio is not None
    await caller.services.sio.emit(
        "rtc:signal",
        {f"{key}_id": ref, "from": sender.peer_id, "data": payload.data.model_dump(exclude_none=True)},
        to=target.sid,
    )
    caller.services.metrics.relayed.inc()
    return {}


# ---- the routing prototype ---------------------------------------------------------------------

SEPARATOR = "~"  # never in a room name of telerounds (`user:…`, `consult:…`, `round:…`)


class TargetedRedisManager(redis_manager.RedisManager):  # type: ignore[misc]
    """The prototype. Kept apart from the stock listener (which signaling/redis_manager.py keeps
    alive through Redis restarts): the own channel has a subscriber task of its own here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag = secrets.token_hex(6)
        self.own_channel = f"{self.channel}{SEPARATOR}{self.tag}"

    def initialize(self) -> None:
        super().initialize()
        self._own_task = self.server.start_background_task(self._listen_own)

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        # As the stock manager, but the socket id starts with this instance's tag.
        sid = f"{self.tag}{SEPARATOR}{self.server.eio.generate_id()}"
        try:
            self.basic_enter_room(sid, namespace, None, eio_sid=eio_sid)
        except socketio.base_manager.ValueDuplicationError:
            return None
        self.basic_enter_room(sid, namespace, sid, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(sid)
        return sid

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        target = to or room
        single = isinstance(target, str) and SEPARATOR in target and callback is None and skip_sid is None
        if kwargs.get("ignore_queue") or not single:
            return await super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
        assert isinstance(target, str)
        tag = target.split(SEPARATOR, 1)[0]
        if tag == self.tag:  # here: straight to the socket
            return await super().emit(event, data, namespace, room, skip_sid, callback, to, ignore_queue=True)
        message = {
            "method": "emit",
            "event": event,
            "data": list(data) if isinstance(data, tuple) else [data],
            "binary": False,
            "namespace": namespace or "/",
            "room": target,
            "skip_sid": None,
            "callback": None,
            "host_id": self.host_id,
        }
        await self._client().publish(f"{self.channel}{SEPARATOR}{tag}", self.json.dumps(message))

    async def _listen_own(self) -> None:
        while True:
            pubsub = self._client().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.own_channel)
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        await self._handle_emit(self.json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)
            finally:
                await pubsub.aclose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.variants")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--relay", choices=["current", "original"], default="current")
    parser.add_argument("--routing", choices=["stock", "targeted"], default="stock")
    args = parser.parse_args(argv)
    if args.loop == "asyncio":
        server_main.new_event_loop = asyncio.new_event_loop  # type: ignore[assignment]
    if args.relay == "original":
        rtc.router.handlers["rtc:signal"] = (rtc.Signal, original_rtc_signal)
    if args.routing == "targeted":
        signaling_server.RedisManager = TargetedRedisManager  # type: ignore[misc]
    return server_main.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
