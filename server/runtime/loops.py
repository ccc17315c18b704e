"""Work repeated on every instance while it runs: heartbeats, offer expiry, dropped peers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from server.runtime.storage import storage_unavailable

log = logging.getLogger("telerounds.loops")


async def every(interval_s: float, work: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `work` every `interval_s` seconds until cancelled; a failure is logged, not fatal."""
    task = asyncio.current_task()
    storage_down = False
    while True:
        try:
            await work()
            storage_down = False
        except Exception as exc:
            if task is not None and task.cancelling():
                pass
            elif storage_unavailable(exc):
                # Expected while Redis or the database is down: said once, not every interval.
                if not storage_down:
                    log.warning("%s paused, storage unavailable: %s", what, type(exc).__name__)
                storage_down = True
            else:
                log.exception("%s failed", what)
        # A client library may swallow our cancellation or turn it into its own error:
        # stop whenever a cancellation was asked for, however `work` ended.
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        await asyncio.sleep(interval_s)
