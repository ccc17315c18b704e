"""python-socketio's Redis client manager, made to stop when asked and to prove that it listens.

The stock listener retries on every exception, and redis-py may turn a cancellation into a
connection error, so on shutdown the listener could keep reconnecting forever. Here it stops
when its task is being cancelled.

Whether messages from other instances arrive is proven end to end: every `HEARTBEAT_S` the
manager publishes a heartbeat on the Socket.IO channel and its own listener must hear it.
`healthy()` (what `/readyz` reports as `pubsub`) is false when the listener task died, while it
reconnects, or when a heartbeat went unheard for `STALE_S`. Thanks to the heartbeats the
subscription is never silent for long, so a read timeout (`SOCKET_TIMEOUT_S`) tells a
half-open connection (a partition, a vanished host) from a quiet one: the listener then
subscribes again on a new connection, as it does after any error or a Redis restart.

It can also disconnect every socket of one user, in every namespace, on every instance
(`disconnect_user`, used when an admin deactivates an account): the stock manager only
disconnects a socket id, and a user's socket ids on other instances are not known here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio

log = logging.getLogger("telerounds.signaling")

# A heartbeat is plain text, not JSON: the stock message loop ignores what it cannot parse,
# so instances that do not know heartbeats skip them.
HEARTBEAT_PREFIX = b"telerounds-heartbeat:"
HEARTBEAT_S = 1.0
STALE_S = 5.0  # unheard this long: not healthy
SOCKET_TIMEOUT_S = 5.0  # no byte for this long on a connection that gets a heartbeat a second: it is dead
RETRY_MAX_S = 5.0  # Redis restarts take seconds; keep retrying often


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    redis: Any
    pubsub: Any
    listening: bool = False
    # When the oldest heartbeat not yet heard was sent; None when all were heard.
    unheard_since: float | None = None

    def __init__(self, url: str, **kwargs: Any) -> None:
        options = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S}
        options.update(kwargs.pop("redis_options", None) or {})
        super().__init__(url, redis_options=options, **kwargs)

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
            self.redis = self._get_redis_module().Redis.from_url(self.redis_url, **self.redis_options)
        return self.redis

    def _redis_connect(self) -> None:
        # A fresh subscription for each (re)connection of the listener (the old one is closed
        # when it fails); the publishing client stays.
        self.pubsub = self._client().pubsub(ignore_subscribe_messages=True)
        self.connected = True

    async def _publish(self, data: Any) -> Any:
        # The stock version reconnects by replacing `self.pubsub` under the running listener.
        message = self.json.dumps(data)
        for attempt in (1, 2):  # the first try after a Redis restart may meet a dead pooled connection
            try:
                return await self._client().publish(self.channel, message)
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
                    await self.pubsub.subscribe(self.channel)
                    subscribed = True
                    self.listening = True
                    retry_s = 0.5
                async for message in self.pubsub.listen():
                    yield message
                # listen() ends when the subscription is gone (unsubscribed): subscribe again.
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

    async def _listen(self) -> AsyncIterator[Any]:
        channel = self.channel.encode("utf-8")
        own = HEARTBEAT_PREFIX + self.host_id.encode()
        async for message in self._redis_listen_with_retries():
            if message["channel"] != channel or message["type"] != "message" or "data" not in message:
                continue
            data = message["data"]
            if isinstance(data, bytes) and data.startswith(HEARTBEAT_PREFIX):
                if data == own:
                    self.unheard_since = None
                continue
            yield data

    async def _heartbeat(self) -> None:
        """Publish a heartbeat to ourselves, for `healthy()`, every HEARTBEAT_S."""
        task = asyncio.current_task()
        while not (task is not None and task.cancelling()):
            if self.unheard_since is None:
                self.unheard_since = time.monotonic()
            with contextlib.suppress(Exception):  # Redis is down: the listener says so already
                await self._client().publish(self.channel, HEARTBEAT_PREFIX + self.host_id.encode())
            await asyncio.sleep(HEARTBEAT_S)

    async def disconnect_user(self, user_id: str) -> None:
        """Disconnect every socket whose session holds this user's account, here and on the other instances.

        Sent as a stock `disconnect` message with a `user_id` (and no `sid`), so an instance that
        does not know this extension treats it as a disconnect of no socket. Delivered at most once,
        like every message between instances: signaling also refuses a revoked user's events.
        """
        await self._disconnect_user_here(user_id)
        await self._publish(
            {"method": "disconnect", "sid": None, "namespace": "/", "user_id": user_id, "host_id": self.host_id}
        )

    async def _handle_disconnect(self, message: dict[str, Any]) -> None:
        user_id = message.get("user_id")
        if isinstance(user_id, str):
            await self._disconnect_user_here(user_id)
        else:
            await super()._handle_disconnect(message)

    async def _disconnect_user_here(self, user_id: str) -> None:
        for namespace in list(self.get_namespaces()):
            for sid, _eio_sid in list(self.get_participants(namespace, None)):
                if not self.is_connected(sid, namespace):
                    continue
                try:
                    session = await self.server.get_session(sid, namespace=namespace)
                except KeyError:  # its engine.io socket closed meanwhile
                    continue
                if getattr(session.get("account"), "id", None) == user_id:
                    await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)

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
