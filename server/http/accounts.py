"""`POST /api/login`, `POST /api/logout` and `GET /api/me`."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import Field

from server.actions import sessions
from server.contract.errors import AppError
from server.contract.validation import Payload
from server.http import addresses
from server.http.common import bearer_token, client_address, read_json, require_account, services_of
from server.live import keys, ratelimit
from server.policy.auth import issue_token, read_token, verify_password
from server.records.users import find_for_login
from server.runtime.settings import Settings

routes = web.RouteTableDef()


class Login(Payload):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


def login_buckets(settings: Settings, username: str, address: str) -> list[tuple[str, int, str]]:
    """The sign-in throttle's buckets for an attempt: (name, attempts per minute, where), both
    keyed by the client's address (an IPv6 client by its /64). Per username *and* address, so
    that a stranger guessing an account's password from elsewhere does not lock its owner out;
    per address, so that one place cannot try many accounts. Never per username alone."""
    place = addresses.throttle_key(address)
    return [
        (keys.login_by_username(username, place), settings.login_attempts_per_minute, "for this username"),
        (keys.login_by_address(place), settings.login_address_attempts_per_minute, "from this address"),
    ]


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    services = services_of(request)
    settings = services.settings
    body = await read_json(request, Login)
    # Guessing is throttled in Redis across instances (`login_buckets`). Every attempt takes a
    # token before the password is checked, so parallel guesses are counted too; a successful
    # sign-in gives them back. A refusal is 429 with Retry-After, which the login page shows.
    buckets = login_buckets(settings, body.username, client_address(request))
    for key, per_minute, where in buckets:
        await ratelimit.take(services.redis, key, per_minute, per_minute / 60, f"too many sign-in attempts {where}")
    found = await find_for_login(services, body.username)
    # The same answer for an unknown user and a wrong password.
    # argon2 is slow on purpose: keep it off the event loop.
    password_hash = found.password_hash if found is not None else None
    if not await asyncio.to_thread(verify_password, password_hash, body.password) or found is None:
        raise AppError("unauthorized", "wrong username or password")
    for key, per_minute, _ in buckets:
        await ratelimit.give_back(services.redis, key, per_minute, per_minute / 60)
    token = issue_token(settings.secret_key, found.account.id, settings.token_ttl_s, generation=found.token_generation)
    return web.json_response({"token": token, "user": found.account.public()})


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    """End the caller's token at once: refused from now on over HTTP and Socket.IO, on every
    instance, and its open sockets closed (`server.actions.sessions`). The user's other sign-ins stay."""
    await require_account(request)  # a valid, unrevoked token (the role gate read it already)
    services = services_of(request)
    token = read_token(services.settings.secret_key, bearer_token(request))
    await sessions.sign_out(services, token, client_address(request))
    return web.json_response({"signed_out": True})


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    account = await require_account(request)
    return web.json_response(account.public())
