"""Presence heartbeats: every live socket's lapse time moves forward, in batches; a socket
that disconnected meanwhile is not brought back."""

from __future__ import annotations

import time

from server import presence
from server.services import redis_client


async def test_a_heartbeat_keeps_every_socket_online_and_none_that_left(redis_url: str) -> None:
    redis = redis_client(redis_url, decode_responses=True)
    try:
        # More sockets than one batch, some users with two devices.
        sockets = {f"hb-user-{i}": [f"abcdef012345~a{i}", f"abcdef012345~b{i}"][: 1 + i % 2] for i in range(1200)}
        for user_id, sids in sockets.items():
            for sid in sids:
                await presence.connect(redis, user_id, sid, ttl_s=1, default="away")
        await presence.disconnect(redis, "hb-user-7", "abcdef012345~b7")
        assert presence.HEARTBEAT_BATCH < sum(len(s) for s in sockets.values())

        await presence.heartbeat(redis, sockets, ttl_s=600)

        later = time.time() + 300  # well after the connect's 1 s lapse
        for user_id, sids in sockets.items():
            scores = dict(await redis.zrange(f"presence:conns:{user_id}", 0, -1, withscores=True))
            expected = [s for s in sids if (user_id, s) != ("hb-user-7", "abcdef012345~b7")]
            assert sorted(scores) == sorted(expected)
            assert all(score > later for score in scores.values())
        assert await redis.zscore(presence.SOCKETS, "hb-user-7|abcdef012345~b7") is None
        assert await redis.zcount(presence.SOCKETS, later, "+inf") == sum(len(s) for s in sockets.values()) - 1
    finally:
        await redis.aclose()
