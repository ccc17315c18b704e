"""`POST /api/login` and `GET /api/me`."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import Field

from server import ratelimit
from server.api.http import client_address, read_json, require_account, services_of
from server.auth import issue_token, verify_password
from server.errors import AppError
from server.users import find_for_login
from server.validation import Payload

routes = web.RouteTableDef()


class Login(Payload):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    services = services_of(request)
    settings = services.settings
    body = await read_json(request, Login)
    # Guessing is throttled per username (one account) and per address (many accounts from one
    # place), counted in Redis across instances. Every attempt takes a token before the password
    # is checked, so parallel guesses are counted too; a successful sign-in gives them back.
    buckets = [
        (f"login:user:{body.username.lower()}", settings.login_attempts_per_minute, "for this username"),
        (f"login:addr:{client_address(request)}", settings.login_address_attempts_per_minute, "from this address"),
    ]
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


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    account = await require_account(request)
    return web.json_response(account.public())
