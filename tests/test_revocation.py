"""Revoked accounts are found among many users in a few round trips."""

from __future__ import annotations

from server import revocation
from server.services import redis_client


async def test_the_revoked_are_found_among_thousands(redis_url: str) -> None:
    redis = redis_client(redis_url, decode_responses=True)
    try:
        users = {f"rv-user-{i}" for i in range(2500)}
        await revocation.revoke(redis, "rv-user-3")
        await revocation.revoke(redis, "rv-user-2499")
        await revocation.revoke(redis, "someone-else")
        assert await revocation.revoked_among(redis, users) == {"rv-user-3", "rv-user-2499"}
        await revocation.restore(redis, "rv-user-3")
        assert await revocation.revoked_among(redis, users) == {"rv-user-2499"}
        assert await revocation.revoked_among(redis, set()) == set()
    finally:
        await redis.aclose()
