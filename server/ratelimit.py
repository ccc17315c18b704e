"""Fixed-window rate limits kept in Redis, so every instance counts together."""

from __future__ import annotations

import redis.asyncio as aioredis

from server.errors import AppError

# INCR and set the window's expiry on its first hit, in one step.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


async def hit(redis: aioredis.Redis, key: str, limit: int, window_s: float) -> None:
    """Count one attempt; `rate_limited` once more than `limit` fall in the window."""
    count = await redis.eval(_HIT, 1, f"ratelimit:{key}", int(window_s * 1000))
    if int(count) > limit:
        raise AppError("rate_limited", "too many attempts; wait a minute and try again")
