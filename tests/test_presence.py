"""Presence: heartbeats move every live socket's lapse time forward, in batches, and never
bring back a socket that disconnected meanwhile; many users' presence is read in one call."""

from __future__ import annotations

import time

from server.live import keys, presence
from server.runtime.services import redis_client


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
        assert await redis.zscore(keys.PRESENCE_SOCKETS, "hb-user-7|abcdef012345~b7") is None
        assert await redis.zcount(keys.PRESENCE_SOCKETS, later, "+inf") == sum(len(s) for s in sockets.values()) - 1
    finally:
        await redis.aclose()


async def test_many_users_read_at_once_equal_each_read_alone(redis_url: str) -> None:
    redis = redis_client(redis_url, decode_responses=True)
    try:
        await presence.connect(redis, "many-online", "abcdef012345~m1", ttl_s=60, default="available")
        await presence.set_status(redis, "many-busy", "busy")  # a status, no device connected
        await presence.connect(redis, "many-lapsed", "abcdef012345~m2", ttl_s=-1, default="available")
        users = ["many-online", "many-busy", "many-lapsed", "many-never-seen"]

        together = await presence.many(redis, users)

        assert together == {user_id: await presence.of(redis, user_id) for user_id in users}
        assert together["many-online"]["online"] and together["many-online"]["status"] == "available"
        assert together["many-busy"]["status"] == "busy" and not together["many-busy"]["online"]
        assert not together["many-lapsed"]["online"]
        assert together["many-never-seen"] == {"status": "away", "online": False, "changed_at": None}
        assert await presence.many(redis, []) == {}
    finally:
        await redis.aclose()
