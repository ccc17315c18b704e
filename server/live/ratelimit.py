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

from server.contract.errors import AppError
from server.live import keys

clock: Callable[[], float] = time.time

# A Lua function for scripts to take tokens with: `take(bucket, burst, refill per second, now (s),
# cost)`; a cost of -1 gives a token back. Refill for the time since the last use, take the cost
# if there is enough, store, and let an idle bucket expire once it would be full again. Returns
# allowed (1 or 0) and the seconds until enough, as a string.
BUCKET = """
local function take(bucket, burst, rate, now, cost)
  local state = redis.call('HMGET', bucket, 'tokens', 'at')
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
  redis.call('HSET', bucket, 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
  redis.call('PEXPIRE', bucket, math.ceil((burst - tokens) / rate * 1000) + 1000)
  return allowed, string.format('%.17g', wait)
end
"""

# KEYS[1]: the bucket. ARGV: burst, refill per second, now (s), cost. Returns {allowed, wait}.
_TAKE = (
    BUCKET
    + """
local allowed, wait = take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return {allowed, wait}
"""
)


# The Redis key of a bucket, and the name of a user's event bucket: their Socket.IO events and
# signed-in HTTP requests, on every device and instance, draw from it (RATE_EVENTS_BURST,
# RATE_EVENTS_PER_S). Both named in `server/live/keys.py`.
key = keys.ratelimit
user_events = keys.user_events


def refusal(message: str, wait_s: float) -> AppError:
    """`rate_limited`, saying when to try again (also as `Retry-After` over HTTP)."""
    seconds = max(1, math.ceil(wait_s))
    return AppError("rate_limited", f"{message}; try again in {seconds} s", retry_after_s=seconds)


@functools.lru_cache(maxsize=8)  # one per client: a service has one
def _script(redis: aioredis.Redis) -> AsyncScript:
    # EVALSHA: the script's hash instead of its text on every call; redis-py loads it again
    # by itself when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH).
    return redis.register_script(_TAKE)


async def _run(redis: aioredis.Redis, name: str, burst: int, per_s: float, cost: int) -> tuple[int, float]:
    allowed, wait = await _script(redis)(keys=[key(name)], args=[burst, per_s, repr(clock()), cost])
    return int(allowed), float(wait)


async def take(redis: aioredis.Redis, name: str, burst: int, per_s: float, message: str) -> None:
    """Take one token from bucket `name`; `rate_limited` (saying when to retry) if there is none."""
    allowed, wait = await _run(redis, name, burst, per_s, 1)
    if allowed != 1:
        raise refusal(message, wait)


async def give_back(redis: aioredis.Redis, name: str, burst: int, per_s: float) -> None:
    """Return a token taken by an attempt that should not count (a successful sign-in)."""
    await _run(redis, name, burst, per_s, -1)
