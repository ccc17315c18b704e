"""An instance's Redis client under a burst: commands wait for a connection, none is refused."""

from __future__ import annotations

import asyncio

from server import presence
from server.services import REDIS_MAX_CONNECTIONS, redis_client


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
