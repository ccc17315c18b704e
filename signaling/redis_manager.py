"""python-socketio's Redis client manager, made to stop when asked and to say whether it listens.

The stock listener retries on every exception, and redis-py may turn a cancellation into a
connection error, so on shutdown the listener could keep reconnecting forever. Here it stops
when its task is being cancelled, and `listening` tells `/readyz` whether messages from other
instances are arriving.

It can also disconnect every socket of one user, in every namespace, on every instance
(`disconnect_user`, used when an admin deactivates an account): the stock manager only
disconnects a socket id, and a user's socket ids on other instances are not known here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import socketio

log = logging.getLogger("telerounds.signaling")


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    listening: bool = False

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        task = asyncio.current_task()
        retry_s = 1.0
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    subscribed = True
                    self.listening = True
                    retry_s = 1.0
                async for message in self.pubsub.listen():
                    yield message
            except Exception as error:
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
                self.listening = False
                subscribed = False
                log.error("Socket.IO listener lost Redis (%s); retrying in %.0f s", type(error).__name__, retry_s)
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, 30.0)

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
        """Stop listening and close the manager's Redis connections."""
        self.listening = False
        thread = getattr(self, "thread", None)
        if thread is not None:
            thread.cancel()
            await asyncio.wait([thread], timeout=2)
        for closable in (getattr(self, "pubsub", None), getattr(self, "redis", None)):
            if closable is not None:
                with contextlib.suppress(Exception):
                    await closable.aclose()
