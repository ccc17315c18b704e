"""Caps per user on the live side: how much one user may hold open at once.

The rules are pure functions of counts and settings; the counts live in Redis (sockets, the
pre-call slot) or the database (open requests), so a cap holds however many instances run.
Each refusal is an `AppError` with a message that says what to do instead.

- Requests waiting for an answer (queued or offered) per clinician: `MAX_OPEN_REQUESTS`, of
  them emergencies: `MAX_OPEN_EMERGENCIES` (an emergency rings every specialist of its specialty).
- Live sockets per user: `MAX_SOCKETS_PER_USER` (counted in `server/live/presence.py`).
- One seat per user in each call: a second join replaces the first (`server/live/rooms.py`).
- One pre-call check per user (`server/actions/precall.py`).
- Signed-in HTTP requests and Socket.IO events share one bucket per user (`server/live/ratelimit.py`).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from server.contract.errors import AppError
from server.policy.lifecycle import ConsultStatus
from server.runtime.settings import Settings

WAITING_STATUSES: tuple[ConsultStatus, ...] = ("queued", "offered")


def request_refusal(waiting_urgencies: Sequence[str], urgency: str, settings: Settings) -> AppError | None:
    """Why a clinician whose requests waiting for an answer have `waiting_urgencies` may not ask
    for another of `urgency`; None when they may."""
    if urgency == "emergency":
        emergencies = sum(1 for u in waiting_urgencies if u == "emergency")
        if emergencies >= settings.max_open_emergencies:
            return AppError(
                "rate_limited",
                f"you have {emergencies} emergency request(s) waiting for an answer, at most "
                f"{settings.max_open_emergencies} at a time; it rings every specialist already, "
                "cancel it or wait until it is accepted",
            )
    if len(waiting_urgencies) >= settings.max_open_requests:
        return AppError(
            "rate_limited",
            f"you have {len(waiting_urgencies)} requests waiting for an answer, at most "
            f"{settings.max_open_requests} at a time; cancel one or wait until one is accepted",
        )
    return None


def sockets_refusal(settings: Settings) -> AppError:
    return AppError(
        "rate_limited",
        f"you are connected from {settings.max_sockets_per_user} tabs or devices already, the most "
        "at one time; close one and try again",
    )


# Release a lease only while it is still ours: it may have lapsed and been taken by another.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def take_lease(redis: aioredis.Redis, key: str, ttl_s: float) -> str | None:
    """Hold `key` for at most `ttl_s` (it lapses by itself if this instance dies); the token to
    release it with, or None when someone holds it."""
    token = secrets.token_hex(8)
    taken = await redis.set(key, token, nx=True, px=max(1, int(ttl_s * 1000)))
    return token if taken else None


async def release_lease(redis: aioredis.Redis, key: str, token: str) -> None:
    await redis.eval(_RELEASE, 1, key, token)


async def lease_wait_s(redis: aioredis.Redis, key: str) -> float:
    """How long until a held lease lapses by itself."""
    return max(0.0, int(await redis.pttl(key)) / 1000)


@asynccontextmanager
async def one_at_a_time(
    redis: aioredis.Redis, key: str, wait_s: float = 5.0, ttl_s: float = 10.0
) -> AsyncIterator[None]:
    """Run the block while no other instance runs one under `key`: a cap's count and the write
    it allows, from two devices at once, would otherwise both pass. Waits up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    while (token := await take_lease(redis, key, ttl_s)) is None:
        if time.monotonic() > deadline:
            raise AppError(
                "rate_limited", "another request of yours is being handled; try again in 1 s", retry_after_s=1
            )
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        await release_lease(redis, key, token)
