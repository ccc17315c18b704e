"""Live consult state in Redis: pending offers, offer slots, the waiting queue.

All of it can be rebuilt from the database; none of it is the record. Every step that more
than one instance might take at the same moment is one Redis command or one Lua script, so it
happens once however many instances run.

Keys:
- `offer:<consult>` hash `{version, expires_at}`; `offer:<consult>:to` set of specialists offered.
- `offers:due` sorted set of consults by when their offer expires (a lease while one is handled).
- `offers:to:<user>` set of consults offered to that specialist (for `session:state`).
- `offer:slot:<user>`: the consult a specialist holds a one-at-a-time offer for.
- `consult:<consult>:declined` set of specialists who declined it.
- `queue:<specialty>` and `queue:named:<specialist>` sorted sets of waiting consults.
- `in-consult` set of specialists in an active consult.
- `in-round` set of `<specialist>|<round>`: in a ward round's call, set busy for it by the server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from server.live import keys

# Release a slot only if it still holds this consult (a later offer may have taken it).
_RELEASE_SLOT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Take a specialist out of an offer; -1 if they were not in it, else how many remain.
_WITHDRAW = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return -1 end
return redis.call('SCARD', KEYS[1])
"""

# Claim an offer whose time is up: push its score forward by a lease so that one instance
# handles it; if that instance dies, another takes it over when the lease ends.
_CLAIM_DUE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Offer:
    consult_id: str
    version: int
    specialists: frozenset[str]
    expires_at: float


class LiveState:
    """The Redis operations behind offers and the queue."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._release = redis.register_script(_RELEASE_SLOT)
        self._withdraw = redis.register_script(_WITHDRAW)
        self._claim = redis.register_script(_CLAIM_DUE)

    # Offer slots: a specialist holds at most one one-at-a-time offer.
    async def claim_slot(self, specialist_id: str, consult_id: str, ttl_s: float) -> bool:
        return bool(await self.redis.set(keys.offer_slot(specialist_id), consult_id, nx=True, px=int(ttl_s * 1000)))

    async def release_slot(self, specialist_id: str, consult_id: str) -> None:
        await self._release(keys=[keys.offer_slot(specialist_id)], args=[consult_id])

    async def slot_holders(self, specialist_ids: list[str]) -> set[str]:
        if not specialist_ids:
            return set()
        held = await self.redis.mget([keys.offer_slot(s) for s in specialist_ids])
        return {s for s, consult in zip(specialist_ids, held, strict=True) if consult}

    # Offers.
    async def open(self, consult_id: str, version: int, specialists: list[str], expires_at: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.offer_to(consult_id))
            pipe.hset(keys.offer(consult_id), mapping={"version": version, "expires_at": expires_at})
            pipe.sadd(keys.offer_to(consult_id), *specialists)
            for specialist_id in specialists:
                pipe.sadd(keys.offers_to(specialist_id), consult_id)
            pipe.zadd(keys.OFFERS_DUE, {consult_id: expires_at})
            await pipe.execute()

    async def get(self, consult_id: str) -> Offer | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.offer(consult_id))
            pipe.smembers(keys.offer_to(consult_id))
            fields, members = await pipe.execute()
        if not fields:
            return None
        return Offer(consult_id, int(fields["version"]), frozenset(members), float(fields["expires_at"]))

    async def close(self, consult_id: str) -> set[str]:
        """End the offer; returns who it was offered to (their slots are released)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(keys.offer_to(consult_id))
            pipe.delete(keys.offer(consult_id), keys.offer_to(consult_id))
            pipe.zrem(keys.OFFERS_DUE, consult_id)
            members, _, _ = await pipe.execute()
        for specialist_id in members:
            await self.redis.srem(keys.offers_to(specialist_id), consult_id)
            await self.release_slot(specialist_id, consult_id)
        return set(members)

    async def withdraw(self, consult_id: str, specialist_id: str) -> int:
        """Take one specialist out of an offer: -1 if they were not in it, else how many remain."""
        remaining = int(await self._withdraw(keys=[keys.offer_to(consult_id)], args=[specialist_id]))
        if remaining >= 0:
            await self.redis.srem(keys.offers_to(specialist_id), consult_id)
            await self.release_slot(specialist_id, consult_id)
        return remaining

    async def offered_to(self, specialist_id: str) -> list[str]:
        return sorted(str(m) for m in await self.redis.smembers(keys.offers_to(specialist_id)))

    async def due(self, now: float, limit: int = 50) -> list[str]:
        return [str(m) for m in await self.redis.zrangebyscore(keys.OFFERS_DUE, "-inf", now, start=0, num=limit)]

    async def claim_due(self, consult_id: str, now: float, lease_s: float = 30.0) -> bool:
        return bool(await self._claim(keys=[keys.OFFERS_DUE], args=[consult_id, now, now + lease_s]))

    async def expire_sooner(self, consult_id: str, at: float) -> None:
        """Bring an offer's expiry forward (e.g. the specialist went offline); never later."""
        await self.redis.zadd(keys.OFFERS_DUE, {consult_id: at}, xx=True, lt=True)

    async def expire_later(self, consult_id: str, at: float) -> None:
        """Put an offer's expiry back to `at` if it is due sooner (its specialist came back)."""
        await self.redis.zadd(keys.OFFERS_DUE, {consult_id: at}, xx=True, gt=True)

    # Who declined what.
    async def declined(self, consult_id: str) -> set[str]:
        return {str(m) for m in await self.redis.smembers(keys.declined(consult_id))}

    async def add_declined(self, consult_id: str, specialist_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.declined(consult_id), specialist_id)
            pipe.expire(keys.declined(consult_id), 7 * 24 * 3600)
            await pipe.execute()

    # The waiting queue.
    async def enqueue(self, key: str, consult_id: str, score: float) -> None:
        await self.redis.zadd(key, {consult_id: score})

    async def dequeue(self, key: str, consult_id: str) -> bool:
        """Remove a consult from a queue; True for the one caller that removed it."""
        return bool(await self.redis.zrem(key, consult_id))

    async def waiting(self, key: str, limit: int = -1) -> list[tuple[str, float]]:
        end = -1 if limit < 0 else limit - 1
        pairs: list[Any] = await self.redis.zrange(key, 0, end, withscores=True)
        return [(str(member), float(score)) for member, score in pairs]

    async def queue_lengths(self, specialties: Sequence[str]) -> dict[str, int]:
        """How many requests wait for each specialty, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for specialty in specialties:
                pipe.zcard(keys.queue(specialty))
            counts = await pipe.execute()
        return dict(zip(specialties, (int(n) for n in counts), strict=True))

    async def position(self, key: str, consult_id: str) -> int | None:
        rank: Any = await self.redis.zrank(key, consult_id)
        return None if rank is None else int(rank) + 1

    # Specialists in an active consult.
    async def set_in_consult(self, specialist_id: str, active: bool) -> None:
        if active:
            await self.redis.sadd(keys.IN_CONSULT, specialist_id)
        else:
            await self.redis.srem(keys.IN_CONSULT, specialist_id)

    async def in_consult(self) -> set[str]:
        return {str(m) for m in await self.redis.smembers(keys.IN_CONSULT)}

    # Specialists in a ward round's call, whom the server set busy for it (`<user>|<round>`: one
    # person may sit in two rounds' calls; they are free again when they left the last).
    async def enter_round(self, specialist_id: str, round_id: str) -> None:
        await self.redis.sadd(keys.IN_ROUND, f"{specialist_id}|{round_id}")

    async def leave_round(self, specialist_id: str, round_id: str) -> bool:
        """True for the one caller that took them out of this round's call."""
        return bool(await self.redis.srem(keys.IN_ROUND, f"{specialist_id}|{round_id}"))

    async def forget_rounds(self, specialist_id: str) -> None:
        """They set their status themselves: the server's busy for a round no longer holds."""
        for member in await self.redis.smembers(keys.IN_ROUND):
            if str(member).partition("|")[0] == specialist_id:
                await self.redis.srem(keys.IN_ROUND, member)

    async def in_round(self) -> set[str]:
        return {str(m).partition("|")[0] for m in await self.redis.smembers(keys.IN_ROUND)}


def now() -> float:
    return time.time()
