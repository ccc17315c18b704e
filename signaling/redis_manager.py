"""python-socketio's Redis client manager, made to stop when asked and to prove that it listens.

The stock listener retries on every exception, and redis-py may turn a cancellation into a
connection error, so on shutdown the listener could keep reconnecting forever. Here it stops
when its task is being cancelled.

Whether messages from other instances arrive is proven end to end: every `HEARTBEAT_S` the
manager publishes a heartbeat on its own channel (below) and its listener must hear it.
`healthy()` (what `/readyz` reports as `pubsub`) is false when the listener task died, while it
reconnects, or when a heartbeat went unheard for `STALE_S`. Thanks to the heartbeats the
subscription is never silent for long, so silence for `SOCKET_TIMEOUT_S` tells a half-open
connection (a partition, a vanished host) from a quiet one: the listener then subscribes again
on a new connection, as it does after any error or a Redis restart. (redis-py's own `listen()`
reads with no timeout at all, whatever the connection's `socket_timeout`.)

An emit to one socket goes only where that socket is (targeted routing): every socket id starts
with the tag of the instance that made it (`<tag>~<engine.io id>`, still an opaque string to
clients), and every instance also listens on a channel of its own, `<channel>~<tag>`. A socket
of this instance gets the message straight, with no publish; a socket of another instance gets
it through that instance's channel only, instead of every instance reading and dropping it.
Rooms, broadcasts, emits with a callback or a `skip_sid` go through the shared channel as stock.
A sender's messages keep their order: each publish is awaited before the next, and an
instance reads both its channels from one subscription, in the order Redis got them.

It can also disconnect every socket of one user, in every namespace, on every instance
(`disconnect_user`, used when an admin deactivates an account): the stock manager only
disconnects a socket id, and a user's socket ids on other instances are not known here.
Likewise it has every instance re-check the open sockets of some users after their access
changed (`reauthorize`; what is checked: signaling/reauthorize.py): a plain-text message on the
shared channel, read in `_listen` like the heartbeats, which instances that do not know it skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import socketio
from socketio.base_manager import ValueDuplicationError
from socketio.packet import Packet

from server.runtime.services import redis_client

log = logging.getLogger("telerounds.signaling")

# A heartbeat is plain text, not JSON: the stock message loop ignores what it cannot parse,
# so instances that do not know heartbeats skip them.
HEARTBEAT_PREFIX = b"telerounds-heartbeat:"
REAUTHORIZE_PREFIX = b"telerounds-reauthorize:"  # + JSON {host_id, user_ids}
HEARTBEAT_S = 1.0
STALE_S = 5.0  # unheard this long: not healthy
SOCKET_TIMEOUT_S = 5.0  # no byte for this long on a connection that gets a heartbeat a second: it is dead
RETRY_MAX_S = 5.0  # Redis restarts take seconds; keep retrying often

SEPARATOR = "~"  # in no engine.io id (URL-safe base64) and no room name of telerounds
TAGGED_SID = re.compile(r"([0-9a-f]{12})" + SEPARATOR)  # the instance tag at the start of a socket id


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    redis: Any
    pubsub: Any
    listening: bool = False
    # When the oldest heartbeat not yet heard was sent; None when all were heard.
    unheard_since: float | None = None
    # Re-checks the open sockets of these users on this instance (set by signaling.server).
    on_reauthorize: Callable[[list[str]], Awaitable[None]] | None = None

    def __init__(self, url: str, **kwargs: Any) -> None:
        options = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S}
        options.update(kwargs.pop("redis_options", None) or {})
        super().__init__(url, redis_options=options, **kwargs)
        # This instance's socket ids start with its tag; its own channel ends with it.
        self.tag = secrets.token_hex(6)
        self.own_channel = f"{self.channel}{SEPARATOR}{self.tag}"

    def initialize(self) -> None:
        super().initialize()
        if not self.write_only:
            self._heartbeat_task = self.server.start_background_task(self._heartbeat)

    def healthy(self) -> bool:
        """Whether this instance is receiving the other instances' messages right now."""
        thread = getattr(self, "thread", None)
        if thread is None or thread.done() or not self.listening:
            return False
        return self.unheard_since is None or time.monotonic() - self.unheard_since < STALE_S

    def _client(self) -> Any:
        # One publishing client for the manager's life: its connection pool reconnects by itself.
        if self.redis is None:
            self.redis = redis_client(self.redis_url, **self.redis_options)
        return self.redis

    def _redis_connect(self) -> None:
        # A fresh subscription for each (re)connection of the listener (the old one is closed
        # when it fails); the publishing client stays.
        self.pubsub = self._client().pubsub(ignore_subscribe_messages=True)
        self.connected = True

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """The stock registration of a new socket, but its id starts with this instance's tag."""
        sid = f"{self.tag}{SEPARATOR}{self.server.eio.generate_id()}"
        try:
            self.basic_enter_room(sid, namespace, None, eio_sid=eio_sid)
        except ValueDuplicationError:  # already connected
            return None
        self.basic_enter_room(sid, namespace, sid, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(sid)
        return sid

    def owner(self, to: str | None) -> str | None:
        """The tag of the instance holding socket `to`; None when `to` is not one socket's id."""
        found = TAGGED_SID.match(to) if to is not None else None
        return found.group(1) if found else None

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
        # Not a sender of events: `server/outbox.py` is. This is the manager's own delivery of
        # what the outbox sends (to local sockets, or published to the instance holding them).
        sid = to or room
        owner = self.owner(sid)
        stock = callback is not None or skip_sid is not None or kwargs.get("ignore_queue")
        if sid is None or owner is None or stock or Packet.data_is_binary(data):
            await super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
        elif owner == self.tag:  # here: straight to the socket
            await super().emit(event, data, namespace, room=sid, ignore_queue=True)
        else:  # to its instance only
            await self._publish(self._emit_message(event, data, namespace, sid), f"{self.channel}{SEPARATOR}{owner}")

    def _emit_message(self, event: str, data: Any, namespace: str | None, sid: str) -> dict[str, Any]:
        """The stock `emit` message of the pub/sub managers, for one socket."""
        return {
            "method": "emit",
            "event": event,
            "data": list(data) if isinstance(data, tuple) else [data],
            "binary": False,
            "namespace": namespace or "/",
            "room": sid,
            "skip_sid": None,
            "callback": None,
            "host_id": self.host_id,
        }

    async def _publish(self, data: Any, channel: str | None = None) -> Any:
        """Publish on the shared channel, or on one instance's `channel`."""
        # The stock version reconnects by replacing `self.pubsub` under the running listener.
        # Bytes go as they are: messages of this module's own that the stock loop would skip.
        message = data if isinstance(data, bytes) else self.json.dumps(data)
        for attempt in (1, 2):  # the first try after a Redis restart may meet a dead pooled connection
            try:
                return await self._client().publish(channel or self.channel, message)
            except Exception as error:
                if attempt == 2:
                    # At most once, like every message between instances: clients resume from snapshots.
                    log.error("Socket.IO message to other instances lost (%s)", type(error).__name__)
        return None

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        task = asyncio.current_task()
        retry_s = 0.5
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    # Both channels on one connection: their messages come in the order published.
                    await self.pubsub.subscribe(self.channel, self.own_channel)
                    subscribed = True
                    self.listening = True
                    retry_s = 0.5
                async for message in self._messages():
                    yield message
                # The subscription is gone (unsubscribed): subscribe again.
                raise ConnectionError("the subscription ended")
            except Exception as error:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
                self.listening = False
                subscribed = False
                if self.pubsub is not None:
                    await _close_quietly(self.pubsub)
                log.error("Socket.IO listener lost Redis (%s); retrying in %.1f s", type(error).__name__, retry_s)
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, RETRY_MAX_S)

    async def _messages(self) -> AsyncIterator[Any]:
        """The subscription's messages, until it has been silent for SOCKET_TIMEOUT_S: then
        ConnectionError, as the connection is dead though no error came."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while self.pubsub.subscribed:
            message = await self.pubsub.get_message(timeout=SOCKET_TIMEOUT_S)
            if message is not None:
                heard = loop.time()
                yield message
            elif loop.time() - heard >= SOCKET_TIMEOUT_S:
                raise ConnectionError(f"the subscription was silent for {SOCKET_TIMEOUT_S:.0f} s")

    async def _listen(self) -> AsyncIterator[Any]:
        channels = (self.channel.encode("utf-8"), self.own_channel.encode("utf-8"))
        own = HEARTBEAT_PREFIX + self.host_id.encode()
        async for message in self._redis_listen_with_retries():
            if message["channel"] not in channels or message["type"] != "message" or "data" not in message:
                continue
            data = message["data"]
            if isinstance(data, bytes) and data.startswith(HEARTBEAT_PREFIX):
                if data == own:
                    self.unheard_since = None
                continue
            if isinstance(data, bytes) and data.startswith(REAUTHORIZE_PREFIX):
                self._reauthorize_message(data[len(REAUTHORIZE_PREFIX) :])
                continue
            yield data

    async def _heartbeat(self) -> None:
        """Publish a heartbeat to ourselves, for `healthy()`, every HEARTBEAT_S: on our own
        channel, which shares the subscription's connection with the shared one, so the other
        instances need not read and drop it."""
        task = asyncio.current_task()
        while not (task is not None and task.cancelling()):
            if self.unheard_since is None:
                self.unheard_since = time.monotonic()
            with contextlib.suppress(Exception):  # Redis is down: the listener says so already
                await self._client().publish(self.own_channel, HEARTBEAT_PREFIX + self.host_id.encode())
            await asyncio.sleep(HEARTBEAT_S)

    async def disconnect_user(self, user_id: str, token_id: str | None = None) -> None:
        """Disconnect every socket whose session holds this user's account, here and on the other
        instances; with `token_id`, only those connected with that token (signing out).

        Sent as a stock `disconnect` message with a `user_id` (and no `sid`), so an instance that
        does not know this extension treats it as a disconnect of no socket. Delivered at most once,
        like every message between instances: signaling also refuses a revoked user's events.
        """
        await self._disconnect_user_here(user_id, token_id)
        await self._publish(
            {
                "method": "disconnect",
                "sid": None,
                "namespace": "/",
                "user_id": user_id,
                "token_id": token_id,
                "host_id": self.host_id,
            }
        )

    async def _handle_disconnect(self, message: dict[str, Any]) -> None:
        user_id = message.get("user_id")
        token_id = message.get("token_id")
        if isinstance(user_id, str):
            await self._disconnect_user_here(user_id, token_id if isinstance(token_id, str) else None)
        else:
            await super()._handle_disconnect(message)

    async def _disconnect_user_here(self, user_id: str, token_id: str | None = None) -> None:
        for namespace in list(self.get_namespaces()):
            for sid, _eio_sid in list(self.get_participants(namespace, None)):
                if not self.is_connected(sid, namespace):
                    continue
                try:
                    session = await self.server.get_session(sid, namespace=namespace)
                except KeyError:  # its engine.io socket closed meanwhile
                    continue
                if getattr(session.get("account"), "id", None) != user_id:
                    continue
                if token_id is None or session.get("token_id") == token_id:
                    await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)

    async def reauthorize(self, user_ids: list[str]) -> None:
        """Every instance re-checks the open sockets of these users: this one before returning,
        the others on a message. Delivered at most once, like every message between instances:
        their sockets also re-check on their next event and at the presence heartbeat."""
        if self.on_reauthorize is not None:
            await self.on_reauthorize(user_ids)
        message = self.json.dumps({"host_id": self.host_id, "user_ids": user_ids})
        await self._publish(REAUTHORIZE_PREFIX + message.encode())

    def _reauthorize_message(self, body: bytes) -> None:
        try:
            message = self.json.loads(body)
            host_id, user_ids = message["host_id"], message["user_ids"]
        except (ValueError, TypeError, KeyError):
            log.warning("a reauthorization message that could not be read was skipped")
            return
        if host_id == self.host_id or self.on_reauthorize is None:  # done here before it was sent
            return
        if isinstance(user_ids, list) and all(isinstance(u, str) for u in user_ids):
            # In a task of its own: it reads the database, and the listener must keep reading.
            self.server.start_background_task(self.on_reauthorize, user_ids)

    async def stop(self) -> None:
        """Stop listening and heartbeats, and close the manager's Redis connections."""
        self.listening = False
        tasks = [t for t in (getattr(self, "thread", None), getattr(self, "_heartbeat_task", None)) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        for closable in (getattr(self, "pubsub", None), getattr(self, "redis", None)):
            if closable is not None:
                await _close_quietly(closable)


async def _close_quietly(closable: Any) -> None:
    with contextlib.suppress(Exception):
        await closable.aclose()
