"""A district hospital's link for media, in user space: a UDP relay on loopback placed between a
browser and coturn's UDP port (tests/system/netem.py does the same for the signalling's TCP).

This kernel has no `netem`, so each datagram is held here instead: a one-way delay with jitter,
random loss, a bandwidth cap (a token bucket draining a bounded queue: what does not fit in
`queue_s` of the cap is dropped, as a router's buffer does), and a cut (`cut()`: nothing passes,
both ways, until `restore()`). Each direction has its own figures: `up` is from the district to
coturn, `down` back. The page whose ICE servers name `port` (relay-only policy) sends all its
media through here. Everything is bounded: at most `MAX_CLIENTS` client addresses at once (one
silent for `IDLE_S` gives its place to a new one), each with its own socket to coturn (so coturn
sees one 5-tuple per client, as through a NAT), and it all closes with `close()`.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

MAX_CLIENTS = 64
# A client address silent this long gives its place to a new one (a call that ended: the browser
# opens new sockets for each connection, so a long run sees many addresses).
IDLE_S = 10.0


@dataclass
class Weather:
    """One direction of the link."""

    delay_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0
    rate_bps: float = 0.0  # 0: no cap
    queue_s: float = 0.25  # how much the cap's buffer holds, in time at the cap
    # Filled in as it runs.
    free_at: float = 0.0  # when the bottleneck has sent what it holds
    passed: int = 0
    dropped: int = 0

    def due(self, now: float, size: int, rng: random.Random) -> float | None:
        """When a datagram of `size` bytes sent `now` arrives, or None when it is lost."""
        if self.loss and rng.random() < self.loss:
            self.dropped += 1
            return None
        leaves = now
        if self.rate_bps:
            start = max(now, self.free_at)
            if start - now > self.queue_s:  # the buffer is full: tail drop
                self.dropped += 1
                return None
            self.free_at = start + size * 8 / self.rate_bps
            leaves = self.free_at
        self.passed += 1
        jitter = rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0
        return leaves + max(0.0, self.delay_s + jitter)


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: list[bytes] = []  # sent before its socket to coturn was open
        self.last_at = 0.0  # when the client last sent something

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)


class DistrictLink:
    """UDP from `127.0.0.1:<port>` to `127.0.0.1:<upstream_port>` through the weather of each way."""

    def __init__(self, upstream_port: int, *, up: Weather | None = None, down: Weather | None = None, seed: int = 23):
        self.upstream_port = upstream_port
        self.up = up or Weather()
        self.down = down or Weather()
        self.rng = random.Random(seed)  # the same weather on every run
        self.port = 0
        self.cut_now = False
        self.front: _Side | None = None
        self.backs: dict[tuple[str, int], _Side] = {}  # client address -> its socket to coturn
        self.handles: set[asyncio.TimerHandle] = set()
        self.opening: set[asyncio.Task[None]] = set()

    async def start(self) -> DistrictLink:
        loop = asyncio.get_running_loop()
        _, self.front = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=("127.0.0.1", 0)
        )
        assert self.front.transport is not None
        self.port = self.front.transport.get_extra_info("sockname")[1]
        return self

    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def set(self, *, up: Weather | None = None, down: Weather | None = None) -> None:
        """New weather from now on (what is in flight arrives as it was going to)."""
        if up is not None:
            self.up = up
        if down is not None:
            self.down = down

    def cap(self, rate_bps: float) -> None:
        """The same bandwidth cap both ways (0 lifts it)."""
        self.up.rate_bps = self.down.rate_bps = rate_bps

    def cut(self) -> None:
        """Nothing passes either way until `restore()`; what is in flight is lost."""
        self.cut_now = True
        for handle in self.handles:
            handle.cancel()
        self.handles.clear()

    def restore(self) -> None:
        self.cut_now = False

    def close(self) -> None:
        self.cut()
        for opening in self.opening:
            opening.cancel()
        for side in (self.front, *self.backs.values()):
            if side is not None and side.transport is not None:
                side.transport.close()
        self.backs.clear()

    def _deliver(self, weather: Weather, data: bytes, send: Any) -> None:
        if self.cut_now:
            weather.dropped += 1
            return
        loop = asyncio.get_running_loop()
        due = weather.due(loop.time(), len(data), self.rng)
        if due is None:
            return

        def fire() -> None:
            self.handles.discard(handle)
            if not self.cut_now:
                send(data)

        handle = loop.call_at(due, fire)
        self.handles.add(handle)

    def _from_client(self, data: bytes, client: tuple[str, int]) -> None:
        back = self.backs.get(client)
        now = asyncio.get_running_loop().time()
        if back is None:
            if len(self.backs) >= MAX_CLIENTS:
                self._forget_idle(now)
            if len(self.backs) >= MAX_CLIENTS:
                return
            back = _Side(lambda reply, _addr: self._to_client(reply, client))
            self.backs[client] = back
            opening = asyncio.ensure_future(self._open_back(back))
            self.opening.add(opening)
            opening.add_done_callback(self.opening.discard)
        back.last_at = now
        if back.transport is not None:
            self._deliver(self.up, data, back.transport.sendto)
        elif len(back.waiting) < 16:
            back.waiting.append(data)

    def _forget_idle(self, now: float) -> None:
        for client, back in list(self.backs.items()):
            if now - back.last_at > IDLE_S and back.transport is not None:
                back.transport.close()
                del self.backs[client]

    async def _open_back(self, back: _Side) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: back, remote_addr=("127.0.0.1", self.upstream_port))
        assert back.transport is not None
        for data in back.waiting:
            self._deliver(self.up, data, back.transport.sendto)
        back.waiting.clear()

    def _to_client(self, data: bytes, client: tuple[str, int]) -> None:
        front = self.front
        if front is not None and front.transport is not None:
            self._deliver(self.down, data, lambda d: front.transport.sendto(d, client))  # type: ignore[union-attr]
