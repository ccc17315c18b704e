"""An instance's Redis client under a burst: commands wait for a connection, none is refused;
with every connection held for too long, a command fails with a clear error instead of hanging;
so does a command that Redis never answers."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
import redis.exceptions

from server.live import presence
from server.runtime.services import (
    REDIS_MAX_CONNECTIONS,
    REDIS_TIMEOUT_S,
    Connection,
    QueueingConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
    redis_client,
)
from tests.system.netem import Netem


async def test_a_thousand_clients_dropping_at_once_are_all_recorded(redis_url: str) -> None:
    # A district's link fails: every one of its clients disconnects at the same moment.
    redis = redis_client(redis_url, decode_responses=True)
    try:
        users = [f"burst-user-{i}" for i in range(1000)]
        await asyncio.gather(*(presence.connect(redis, u, f"sid-{u}", 60, "away") for u in users))
        assert all(await asyncio.gather(*(presence.online(redis, u) for u in users)))

        await asyncio.gather(*(presence.disconnect(redis, u, f"sid-{u}") for u in users))

        assert not any(await asyncio.gather(*(presence.online(redis, u) for u in users)))
        pool = redis.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) <= REDIS_MAX_CONNECTIONS
    finally:
        await redis.aclose()


async def test_a_command_waits_for_a_released_connection_and_gives_up_after_its_timeout(redis_url: str) -> None:
    pool = QueueingConnectionPool.from_url(redis_url, max_connections=2, timeout=0.3)
    client = redis.asyncio.Redis.from_pool(pool)
    try:
        held = [await pool.get_connection(), await pool.get_connection()]
        with pytest.raises(redis.exceptions.ConnectionError, match=r"no Redis connection free within 0\.3 s"):
            await client.ping()

        waiting = asyncio.create_task(client.ping())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await pool.release(held.pop())
        assert await asyncio.wait_for(waiting, 1) is True
        await pool.release(held.pop())
    finally:
        await client.aclose()


async def test_a_command_redis_never_answers_fails_after_the_timeout_and_the_next_one_works(redis_url: str) -> None:
    # A partition: the link goes quiet, no error, no bytes.
    link = await Netem(int(redis_url.rsplit(":", 1)[1].split("/")[0]), delay_s=0.0, loss=0.0).start()
    client = redis_client(f"redis://127.0.0.1:{link.port}/0", socket_timeout=0.2)
    try:
        assert await client.ping() is True
        link.stall()
        with pytest.raises(redis.exceptions.TimeoutError):
            await asyncio.wait_for(client.ping(), 10)  # the outer limit only stops a hanging test
        link.resume()
        assert await client.ping() is True
    finally:
        await client.aclose()
        await link.close()


def test_every_url_scheme_gets_untimed_writes_and_a_reply_timeout() -> None:
    for url, kind in [
        ("redis://127.0.0.1:6379/0", Connection),
        ("rediss://127.0.0.1:6380/0", SSLConnection),
        ("unix:///run/redis/redis.sock", UnixDomainSocketConnection),
    ]:
        pool = redis_client(url).connection_pool
        connection = pool.make_connection()
        assert isinstance(connection, kind), url
        assert connection.socket_timeout == connection.socket_connect_timeout == REDIS_TIMEOUT_S, url
