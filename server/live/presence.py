"""Presence: the status a user sets, and whether any of their devices is connected.

Redis keys (all rebuildable: clients set them again when they reconnect):
- `presence:<user_id>` hash: `status` (available/busy/away), `chosen` (the status the user
  picked, restored after an automatic busy), `changed_at`.
- `presence:conns:<user_id>` sorted set: socket ids scored by when their heartbeat lapses.
  A user is online while one score lies in the future, so the users of a crashed
  instance go offline once its heartbeats stop.
- `presence:sockets` sorted set: `<user_id>|<sid>` of every socket, scored the same way, so
  that one instance can find (`lapsed`) and clean up the sockets of a crashed one.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from server.live import keys

Status = Literal["available", "busy", "away"]
STATUSES: tuple[str, ...] = ("available", "busy", "away")


def _socket(user_id: str, sid: str) -> str:
    return f"{user_id}|{sid}"


async def set_status(redis: aioredis.Redis, user_id: str, status: Status, *, chosen: bool = True) -> None:
    """Record a status; `chosen=False` for automatic changes that should not replace the user's pick."""
    fields: dict[Any, str] = {"status": status, "changed_at": datetime.now(UTC).isoformat()}
    if chosen:
        fields["chosen"] = status
    await redis.hset(keys.presence(user_id), mapping=fields)


# KEYS: `presence:conns:<user>`, `presence:sockets`, `presence:<user>`. ARGV: sid, its member of `presence:sockets`,
# lapse time, now, the most live sockets (0: no cap), default status, changed_at. Counts the
# user's live sockets (a crashed instance's lapse with their heartbeat) and adds this one only
# while there are fewer than the cap: 1 when added, 0 when refused.
_CONNECT = """
local most = tonumber(ARGV[5])
if most > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[4], '+inf') >= most then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('HSETNX', KEYS[3], 'status', ARGV[6])
redis.call('HSETNX', KEYS[3], 'chosen', ARGV[6])
redis.call('HSETNX', KEYS[3], 'changed_at', ARGV[7])
return 1
"""


@functools.lru_cache(maxsize=8)  # one per client: a service has one
def _connect_script(redis: aioredis.Redis) -> AsyncScript:
    return redis.register_script(_CONNECT)


async def connect(redis: aioredis.Redis, user_id: str, sid: str, ttl_s: int, default: Status, most: int = 0) -> bool:
    """Count a new socket of this user as online; False (and nothing recorded) when they have
    `most` live sockets already, on any instance (0: no cap)."""
    moment = time.time()
    added = await _connect_script(redis)(
        keys=[keys.presence_conns(user_id), keys.PRESENCE_SOCKETS, keys.presence(user_id)],
        args=[
            sid,
            _socket(user_id, sid),
            repr(moment + ttl_s),
            repr(moment),
            most,
            default,
            datetime.now(UTC).isoformat(),
        ],
    )
    return bool(int(added))


async def disconnect(redis: aioredis.Redis, user_id: str, sid: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.presence_conns(user_id), sid)
        pipe.zrem(keys.PRESENCE_SOCKETS, _socket(user_id, sid))
        await pipe.execute()


# KEYS = `presence:sockets`, then each socket's `presence:conns:<user>`; ARGV = expires, then for each
# socket its id and its member of `presence:sockets`. Keys and members are named here, by `keys.presence_conns` and
# `_socket`, not again in the script.
_HEARTBEAT = """
local expires = ARGV[1]
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', expires, ARGV[2 * i - 2])
  redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[2 * i - 1])
end
return 0
"""
HEARTBEAT_BATCH = 500  # sockets per script call: Redis is never held for long


@functools.lru_cache(maxsize=8)  # one per client: a service has one
def _heartbeat_script(redis: aioredis.Redis) -> AsyncScript:
    return redis.register_script(_HEARTBEAT)


async def heartbeat(redis: aioredis.Redis, sids_by_user: dict[str, list[str]], ttl_s: int) -> None:
    """Push forward the lapse time of this instance's live sockets.

    Two sorted-set updates per socket, done by a script in batches rather than sent one by one:
    packing and parsing 10,000 commands for 5,000 sockets held the event loop for about 0.4 s,
    every few seconds, delaying every message that waited behind it."""
    expires = repr(time.time() + ttl_s)
    pairs = [(user_id, sid) for user_id, sids in sids_by_user.items() for sid in sids]
    for start in range(0, len(pairs), HEARTBEAT_BATCH):
        batch = pairs[start : start + HEARTBEAT_BATCH]
        names = [keys.PRESENCE_SOCKETS, *(keys.presence_conns(user_id) for user_id, _ in batch)]
        args = [expires, *(part for user_id, sid in batch for part in (sid, _socket(user_id, sid)))]
        await _heartbeat_script(redis)(keys=names, args=args)


async def lapsed(redis: aioredis.Redis, limit: int = 100) -> list[tuple[str, str]]:
    """`(user_id, sid)` of sockets whose heartbeat lapsed (their instance died), each returned
    to exactly one caller, and forgotten."""
    claimed: list[tuple[str, str]] = []
    for member in [
        str(m) for m in await redis.zrangebyscore(keys.PRESENCE_SOCKETS, "-inf", time.time(), start=0, num=limit)
    ]:
        if await redis.zrem(keys.PRESENCE_SOCKETS, member):  # the one caller that removed it handles it
            user_id, _, sid = member.partition("|")
            await redis.zrem(keys.presence_conns(user_id), sid)
            claimed.append((user_id, sid))
    return claimed


async def online(redis: aioredis.Redis, user_id: str) -> bool:
    return bool(await redis.zcount(keys.presence_conns(user_id), time.time(), "+inf"))


async def of(redis: aioredis.Redis, user_id: str) -> dict[str, Any]:
    """`{status, online, changed_at}` for one user; `away` for a user never seen."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.presence(user_id))
        pipe.zcount(keys.presence_conns(user_id), time.time(), "+inf")
        stored, live = await pipe.execute()
    return {
        "status": stored.get("status", "away"),
        "online": bool(live),
        "changed_at": stored.get("changed_at"),
    }


# KEYS = for each user `presence:<user>` then `presence:conns:<user>`; ARGV = now. Returns, for
# each user, their status, when it changed (nil when never set) and how many sockets are live.
_MANY = """
local found = {}
for i = 1, #KEYS, 2 do
  local fields = redis.call('HMGET', KEYS[i], 'status', 'changed_at')
  found[#found + 1] = fields[1]
  found[#found + 1] = fields[2]
  found[#found + 1] = redis.call('ZCOUNT', KEYS[i + 1], ARGV[1], '+inf')
end
return found
"""


@functools.lru_cache(maxsize=8)
def _many_script(redis: aioredis.Redis) -> AsyncScript:
    return redis.register_script(_MANY)


async def many(redis: aioredis.Redis, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """`of()` for several users in one command. A script rather than a pipeline of two commands
    per user: for a roster of 50 it costs a quarter of the client's CPU (1.5 ms against 6)."""
    if not user_ids:
        return {}
    names = [key for user_id in user_ids for key in (keys.presence(user_id), keys.presence_conns(user_id))]
    found = await _many_script(redis)(keys=names, args=[time.time()])
    return {
        user_id: {
            "status": found[3 * i] or "away",
            "online": bool(found[3 * i + 2]),
            "changed_at": found[3 * i + 1],
        }
        for i, user_id in enumerate(user_ids)
    }


async def restore_chosen(redis: aioredis.Redis, user_id: str) -> None:
    """Back to the status the user picked, after an automatic one (busy in a consult)."""
    chosen = await redis.hget(keys.presence(user_id), "chosen")
    status: Status = chosen if chosen in STATUSES else "available"  # type: ignore[assignment]
    await set_status(redis, user_id, status, chosen=False)
