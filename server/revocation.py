"""Revoked accounts: a deactivated user is refused at once, on every instance.

Redis key `revoked:<user_id>` (no expiry: a socket may outlive any token) is set when an admin
deactivates the user and deleted when they are activated again. Signaling checks it on every
event, within the round trip that admits the event (`signaling.router.admit_event`);
connects and HTTP requests check the database's `active` flag instead
(`server.users.load_account`), which stays the truth should Redis lose the key.
"""

from __future__ import annotations

import redis.asyncio as aioredis


def key(user_id: str) -> str:
    """The Redis key that exists while this user is revoked."""
    return f"revoked:{user_id}"


async def revoke(redis: aioredis.Redis, user_id: str) -> None:
    await redis.set(key(user_id), "1")


async def restore(redis: aioredis.Redis, user_id: str) -> None:
    await redis.delete(key(user_id))


async def revoked_among(redis: aioredis.Redis, user_ids: set[str]) -> set[str]:
    """Which of these users are revoked: one MGET (not one EXISTS each) per thousand users."""
    ordered = sorted(user_ids)
    revoked: set[str] = set()
    for start in range(0, len(ordered), 1000):
        batch = ordered[start : start + 1000]
        found = await redis.mget([key(user_id) for user_id in batch])
        revoked.update(user_id for user_id, value in zip(batch, found, strict=True) if value is not None)
    return revoked
