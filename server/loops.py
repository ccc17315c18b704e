"""Work repeated on every instance while it runs: heartbeats, offer expiry, dropped peers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("telerounds.loops")


async def every(interval_s: float, work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `work` every `interval_s` seconds until cancelled; a failure is logged, not fatal."""
    task = asyncio.current_task()
    while True:
        try:
            await work()
        except Exception:
            if not (task is not None and task.cancelling()):
                log.exception("%s failed", what)
        # A client library may swallow our cancellation or turn it into its own error:
        # stop whenever a cancellation was asked for, however `work` ended.
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        await asyncio.sleep(interval_s)
