"""An instance's Redis client under a burst: commands wait for a connection, none is refused;
with every connection held for too long, a command fails with a clear error instead of hanging."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
import redis.exceptions

from server import presence
from server.services import REDIS_MAX_CONNECTIONS, QueueingConnectionPool, redis_client


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
