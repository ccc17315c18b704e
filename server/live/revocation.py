"""Revoked accounts, and the version of each user's authorization: what an open socket was given
at connect is checked again on every event, on every instance.

**Revoked.** Redis key `revoked:<user_id>` (no expiry: a socket may outlive any token) is set when
an admin deactivates the user and deleted when they are activated again. Signaling checks it on
every event, within the round trip that admits the event (`signaling.router.admit_event`);
connects and HTTP requests check the database's `active` flag instead
(`server.records.users.load_account`), which stays the truth should Redis lose the key.

**Stamps.** Redis key `authz:<user_id>` holds a random stamp, replaced (`reauthorize`) whenever
something that decides the user's access changes: their hospital, role, active flag or password,
or a round that named them naming them no more. A socket keeps the account it read at connect
together with the stamp it read just before (`Account.stamp`); each event compares the two within
its admission script (no extra round trip). On a difference the socket re-reads the account from
the database and leaves the rooms it may no longer be in (`signaling.reauthorize`). `reauthorize`
also tells every instance at once, so a socket that sends nothing leaves them too.

A random stamp, not a counter: should Redis lose the key, a counter would start again at a value
some socket may hold already, whereas a new stamp differs from every one held, so each socket
re-reads its account once. The writer changes the database first and the stamp after; a reader
reads the stamp first and the database after: whichever way they interleave, a socket never keeps
an old account under a current stamp.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from server.live import keys
from server.runtime.services import Services

BATCH = 1000  # users per MGET


# The Redis key that exists while a user is revoked, and the one holding the version of their
# authorization (both named in `server/live/keys.py`).
key = keys.revoked
stamp_key = keys.authz


def new_stamp() -> str:
    return secrets.token_hex(8)


async def revoke(redis: aioredis.Redis, user_id: str) -> None:
    await redis.set(key(user_id), "1")


async def restore(redis: aioredis.Redis, user_id: str) -> None:
    await redis.delete(key(user_id))


# KEYS[1]: a stamp key; ARGV[1]: a new stamp, set only when the key has none. Returns the stamp.
_STAMP = """
local stamp = redis.call('GET', KEYS[1])
if not stamp then
  stamp = ARGV[1]
  redis.call('SET', KEYS[1], stamp)
end
return stamp
"""


@functools.lru_cache(maxsize=8)  # one per client: a service has one
def _stamp_script(redis: aioredis.Redis) -> AsyncScript:
    return redis.register_script(_STAMP)


async def stamp_of(redis: aioredis.Redis, user_id: str) -> str:
    """The user's current stamp, made now if there is none (a new user, or Redis lost it).

    Read before the account itself: see the module's note on order."""
    value = await _stamp_script(redis)(keys=[stamp_key(user_id)], args=[new_stamp()])
    return value.decode() if isinstance(value, bytes) else str(value)


async def bump(redis: aioredis.Redis, user_ids: Iterable[str]) -> None:
    """A new stamp for each user, in one command: their sockets re-read their accounts."""
    stamps = {stamp_key(user_id): new_stamp() for user_id in user_ids}
    if stamps:
        await redis.mset(stamps)


async def reauthorize(services: Services, user_ids: Iterable[str]) -> None:
    """After a change to what decides these users' access (written to the database already):
    new stamps, then every instance re-reads the account of each of their open sockets and moves
    it out of the rooms it may no longer be in, at once (`RedisManager.reauthorize`).

    That message is delivered at most once, like every message between instances: should it be
    lost, the socket still re-reads on its next event (the stamp) and at the presence heartbeat."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    await bump(services.redis, ids)
    if services.sio is not None:
        await services.sio.manager.reauthorize(ids)


@dataclass(frozen=True)
class Standing:
    """What Redis holds about some users: who is revoked, and each one's stamp ("" for none)."""

    revoked: set[str]
    stamps: dict[str, str]


async def standing_among(redis: aioredis.Redis, user_ids: set[str]) -> Standing:
    """`Standing` of these users: one MGET (not two commands each) per thousand users."""
    ordered = sorted(user_ids)
    revoked: set[str] = set()
    stamps: dict[str, str] = {}
    for start in range(0, len(ordered), BATCH):
        batch = ordered[start : start + BATCH]
        found = await redis.mget([key(u) for u in batch] + [stamp_key(u) for u in batch])
        for user_id, flag, stamp in zip(batch, found[: len(batch)], found[len(batch) :], strict=True):
            if flag is not None:
                revoked.add(user_id)
            stamps[user_id] = (stamp.decode() if isinstance(stamp, bytes) else stamp) or ""
    return Standing(revoked, stamps)


async def revoked_among(redis: aioredis.Redis, user_ids: set[str]) -> set[str]:
    """Which of these users are revoked (see `standing_among`)."""
    return (await standing_among(redis, user_ids)).revoked
