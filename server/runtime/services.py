"""What one running instance holds: settings, the database, Redis, the Socket.IO server, metrics."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
import redis.exceptions as redis_exc
from redis.asyncio.connection import parse_url

from server.actions.precall import PrecallPeers
from server.live.offers import LiveState
from server.live.rooms import Rooms
from server.media.live import Recordings
from server.records.blobs import BlobStore
from server.records.models import Database
from server.runtime.metrics import Metrics
from server.runtime.settings import Settings

if TYPE_CHECKING:
    import socketio

# At most this many Redis connections per client; a command waits up to REDIS_WAIT_S for a free
# one. redis-py's own pool fails a command at once beyond 100 ("Too many connections"), and a
# burst is exactly when that happens: a district's link failing drops hundreds of clients at
# once, and their disconnects (presence, the calls' rooms) failed and were lost.
REDIS_MAX_CONNECTIONS = 64
REDIS_WAIT_S = 10.0
# A Redis that stops answering (a partition, a frozen host) fails a command after this long,
# instead of holding it, and the client waiting on it, forever.
REDIS_TIMEOUT_S = 5.0


class QueueingConnectionPool(aioredis.ConnectionPool):
    """redis-py's pool, except that a command finding every connection in use waits for one to
    be released (up to `timeout` seconds) instead of failing.

    Only a command that finds the pool full waits; the others take redis-py's own path. (Its
    BlockingConnectionPool takes a condition and arms a timer for every command: 141 µs of
    client CPU per command against 107 µs here, docs/benchmarks.md.)"""

    def __init__(self, timeout: float = REDIS_WAIT_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis_exc.MaxConnectionsError:
            pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise redis_exc.ConnectionError(
                    f"no Redis connection free within {self.timeout:g} s ({self.max_connections} in use)"
                ) from None
            except asyncio.CancelledError:
                # Woken and cancelled at once: the released connection is for the next waiter.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
            try:
                return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
            except redis_exc.MaxConnectionsError:
                continue  # a command that did not wait took it first

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class UntimedWrite:
    """A connection that writes a command with no timer armed; its reply's read keeps the
    `socket_timeout`.

    With `socket_timeout` set, redis-py runs each write in `asyncio.wait_for`: a task of its own
    and one more turn of the event loop for every command, about a sixth of a command's client
    CPU (docs/benchmarks.md, section 9). A write only waits when the socket's buffer is full, and a Redis that
    stopped answering shows in the reply, whose read still times out."""

    socket_timeout: float | None

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        # The pool hands a connection to one command at a time, already connected (the connect
        # and its handshake have their own timeouts): only this write runs without a timer.
        timeout, self.socket_timeout = self.socket_timeout, None
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        finally:
            self.socket_timeout = timeout


class Connection(UntimedWrite, aioredis.Connection):
    """redis:// with `UntimedWrite`."""


class SSLConnection(UntimedWrite, aioredis.SSLConnection):
    """rediss:// with `UntimedWrite`."""


class UnixDomainSocketConnection(UntimedWrite, aioredis.UnixDomainSocketConnection):
    """unix:// with `UntimedWrite`."""


UNTIMED_WRITE: dict[type[Any], type[Any]] = {
    aioredis.Connection: Connection,
    aioredis.SSLConnection: SSLConnection,
    aioredis.UnixDomainSocketConnection: UnixDomainSocketConnection,
}


def redis_client(url: str, **options: Any) -> aioredis.Redis:
    """A Redis client whose commands queue for one of REDIS_MAX_CONNECTIONS connections and fail
    after `socket_timeout` seconds (REDIS_TIMEOUT_S unless given) without a reply."""
    # The URL's own options win, as in redis-py's from_url; its scheme picks the connection.
    settings = {"socket_timeout": REDIS_TIMEOUT_S, **options, **parse_url(url)}
    base = settings.pop("connection_class", aioredis.Connection)
    pool = QueueingConnectionPool(
        connection_class=UNTIMED_WRITE[base], max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_WAIT_S, **settings
    )
    return aioredis.Redis.from_pool(pool)


@dataclass
class Services:
    settings: Settings
    db: Database
    redis: aioredis.Redis
    metrics: Metrics = field(default_factory=Metrics)
    live: LiveState = field(init=False)
    rooms: Rooms = field(init=False)
    precall: PrecallPeers = field(init=False)
    recordings: Recordings = field(init=False)
    blobs: BlobStore = field(init=False)
    sio: socketio.AsyncServer | None = None
    # Loops that run while the app runs (heartbeats, offer expiry); started and cancelled by the app.
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Something the supervisor board shows changed here; /monitor sends the board again soon.
    board_dirty: bool = False

    def __post_init__(self) -> None:
        self.live = LiveState(self.redis)
        self.rooms = Rooms(self.redis)
        self.precall = PrecallPeers(self.settings, self.redis)
        self.recordings = Recordings()
        self.blobs = BlobStore(self.settings.blob_dir)

    def board_changed(self) -> None:
        self.board_dirty = True

    async def close(self) -> None:
        await self.precall.close_all()
        from server.actions import recording  # the use case, which imports these services

        await recording.close_all(self)
        await self.redis.aclose()
        await self.db.close()


def connect(settings: Settings, redis_url: str) -> Services:
    return Services(
        settings=settings,
        db=Database(settings.database_url),
        # After Redis restarts, every pooled connection is dead: retry on a fresh one instead of
        # failing the first command of each (a specialist's session:state, say).
        redis=redis_client(
            redis_url, decode_responses=True, retry_on_error=[redis_exc.ConnectionError, redis_exc.TimeoutError]
        ),
    )
