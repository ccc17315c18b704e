"""How long the event loop was held: a meter for tests and benchmarks.

While the meter runs, a task sleeps 5 ms over and over and notes how late it wakes. A request
that keeps the loop busy (a long loop in a handler, a blocking call) makes it wake late by that
long. Two kinds of lateness are not the service's doing and are taken out, so that a loaded
machine does not pass for a blocked loop: the time the loop's thread waited, runnable, for a CPU
(Linux `/proc/thread-self/schedstat`; on other systems nothing is taken out), and the time spent
in Python's cyclic garbage collector (a process-wide pause that `server.__main__.tune_collector`
deals with; tests run without that tuning).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from pathlib import Path
from types import TracebackType
from typing import Any

SCHEDSTAT = Path("/proc/thread-self/schedstat")
TICK_S = 0.005


def runqueue_wait_s() -> float:
    """Seconds this thread has spent runnable but not running, since it began; 0 where unknown."""
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class _CollectorClock:
    """Total seconds spent in the garbage collector while at least one meter runs."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started: float | None = None
        self.users = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.total += time.perf_counter() - self._started
            self._started = None

    def acquire(self) -> None:
        if self.users == 0:
            gc.callbacks.append(self)
        self.users += 1

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self in gc.callbacks:
            gc.callbacks.remove(self)


_COLLECTOR = _CollectorClock()


class LoopLag:
    """`async with LoopLag() as lag: ...` then `lag.worst_s`: the longest the loop was held.

    Use it in the event loop that runs the server under test."""

    def __init__(self, tick_s: float = TICK_S) -> None:
        self.tick_s = tick_s
        self.worst_s = 0.0
        self.worst_raw_s = 0.0  # the lateness as it was, machine load and collector included
        self.samples = 0
        self._task: asyncio.Task[None] | None = None
        self._mark: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        return time.perf_counter(), runqueue_wait_s(), _COLLECTOR.total

    def _record(self) -> None:
        (then, waited, collected), (now, waited_now, collected_now) = self._mark, self._now()
        raw = now - then - self.tick_s
        self.worst_raw_s = max(self.worst_raw_s, raw)
        self.worst_s = max(self.worst_s, raw - (waited_now - waited) - (collected_now - collected))
        self.samples += 1

    async def _sample(self) -> None:
        while True:
            self._mark = self._now()
            await asyncio.sleep(self.tick_s)
            self._record()

    async def __aenter__(self) -> LoopLag:
        _COLLECTOR.acquire()
        self._task = asyncio.create_task(self._sample())
        await asyncio.sleep(0)  # the sampler is asleep before the measured work starts
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._task is not None
        # The interval under way counts too, if it has already run over: a request that blocked
        # the loop may be answered before the sampler had its turn to wake.
        if time.perf_counter() - self._mark[0] > self.tick_s:
            self._record()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        _COLLECTOR.release()

    @property
    def worst_ms(self) -> float:
        return round(self.worst_s * 1000, 1)
