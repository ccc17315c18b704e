"""Token buckets kept in Redis, so every instance draws from the same bucket and a limit holds
however the load balancer spreads a user's connections.

A bucket holds at most `burst` tokens and refills at `per_s` tokens a second; each attempt takes
one, and an attempt that finds less than one token is refused with `rate_limited`. The time comes
from `clock` (the instance's clock), which the tests move forward instead of sleeping.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from server.errors import AppError

clock: Callable[[], float] = time.time

# KEYS[1]: the bucket; KEYS[2], optional: a key whose existence refuses the attempt before any
# token is taken (a revoked account), so that check costs no round trip of its own.
# ARGV: burst, refill per second, now (s), cost (-1 gives a token back).
# Refill for the time since the last use, take the cost if there is enough, store, and let an
# idle bucket expire once it would be full again. Returns {allowed, seconds until enough};
# allowed is -1 when KEYS[2] exists.
_TAKE = """
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1, '0'}
end
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = math.min(burst, tokens - cost)
  allowed = 1
else
  wait = (cost - tokens) / rate
end
-- %.17g: tostring keeps 14 digits, which would lose a fraction of a second of `at`.
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', wait)}
"""


@functools.lru_cache(maxsize=8)  # one per client: a service has one
def _script(redis: aioredis.Redis) -> AsyncScript:
    # EVALSHA: the script's hash instead of its text on every call; redis-py loads it again
    # by itself when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH).
    return redis.register_script(_TAKE)


async def _run(redis: aioredis.Redis, keys: list[str], burst: int, per_s: float, cost: int) -> tuple[int, float]:
    allowed, wait = await _script(redis)(keys=keys, args=[burst, per_s, repr(clock()), cost])
    return int(allowed), float(wait)


async def take(
    redis: aioredis.Redis, key: str, burst: int, per_s: float, message: str, *, unless_exists: str | None = None
) -> bool:
    """Take one token from bucket `key`; `rate_limited` (saying when to retry) if there is none.

    With `unless_exists`, False (and nothing taken) when that Redis key exists: signaling
    checks an account's revocation and its rate limit in this one round trip."""
    keys = [f"ratelimit:{key}"] + ([unless_exists] if unless_exists is not None else [])
    allowed, wait = await _run(redis, keys, burst, per_s, 1)
    if allowed == -1:
        return False
    if allowed != 1:
        raise AppError("rate_limited", f"{message}; try again in {max(1, math.ceil(wait))} s")
    return True


async def give_back(redis: aioredis.Redis, key: str, burst: int, per_s: float) -> None:
    """Return a token taken by an attempt that should not count (a successful sign-in)."""
    await _run(redis, [f"ratelimit:{key}"], burst, per_s, -1)
