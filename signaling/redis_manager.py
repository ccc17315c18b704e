"""python-socketio's Redis client manager, made to stop when asked and to say whether it listens.

The stock listener retries on every exception, and redis-py may turn a cancellation into a
connection error, so on shutdown the listener could keep reconnecting forever. Here it stops
when its task is being cancelled, and `listening` tells `/readyz` whether messages from other
instances are arriving.
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
