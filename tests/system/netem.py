"""A district network in userspace: an asyncio TCP proxy on loopback that delays, loses and drops.

`tc qdisc ... netem` is not available on every kernel (nor without privileges), so the tests
put this proxy between a client and the service instead. Over TCP a lost packet is never seen
as lost: it arrives late, after a retransmission timeout, and holds up everything behind it.
So each chunk is delivered `delay_s` after it was read, and with probability `loss` one
retransmission timeout later, never before the chunk in front of it (head-of-line blocking).
`stall()` holds every byte (a link that went quiet), `drop()` cuts every connection (the
link went down); new connections are accepted meanwhile, as after the link came back.
`blackhole()` silences the connections open now for good, with no error on either side (the
far host vanished), while new ones flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

CHUNK = 64 * 1024


class Netem:
    """A proxy from `127.0.0.1:<port>` to `127.0.0.1:<upstream_port>`."""

    def __init__(
        self,
        upstream_port: int,
        *,
        delay_s: float = 0.150,
        loss: float = 0.05,
        retransmit_s: tuple[float, float] = (0.3, 0.9),
        seed: int = 10,
    ) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.loss = loss
        self.retransmit_s = retransmit_s
        self.random = random.Random(seed)  # the same "weather" on every run
        self.port = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None
        self.connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.silenced: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.late_chunks = 0  # how many chunks a "loss" held back, for the report

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Netem:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def stall(self) -> None:
        """Hold every byte in flight, in both directions, until `resume()`."""
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def blackhole(self) -> None:
        """Deliver nothing more on the connections open now, and close none of them."""
        self.silenced |= self.connections

    def drop(self) -> None:
        """Cut every open connection, as a link going down does (the peers see a reset)."""
        for client, upstream in list(self.connections):
            client.transport.abort()
            upstream.transport.abort()
        self.connections.clear()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.drop()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        pair = (client_writer, upstream_writer)
        self.connections.add(pair)
        for reader, writer in ((client_reader, upstream_writer), (upstream_reader, client_writer)):
            task = asyncio.ensure_future(self._pump(reader, writer, pair))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        """One direction: read, hold each chunk until its time, write in order."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                await self.flowing.wait()
                if pair in self.silenced:
                    continue
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        last_due = 0.0
        try:
            while True:
                data = await reader.read(CHUNK)
                due = loop.time() + self.delay_s
                if data and self.random.random() < self.loss:
                    due += self.random.uniform(*self.retransmit_s)
                    self.late_chunks += 1
                last_due = max(due, last_due)  # TCP delivers in order: a late chunk holds the rest
                queue.put_nowait((last_due, data))
                if not data:  # end of stream: pass it on after what is in flight
                    break
            await delivering
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            delivering.cancel()
            with contextlib.suppress(BaseException):
                await delivering
            self.connections.discard(pair)
            for side in pair:
                side.transport.abort()
