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
    body = await read_json(request, Login)
    limit = services.settings.login_attempts_per_minute
    await ratelimit.hit(services.redis, f"login:user:{body.username.lower()}", limit, 60)
    await ratelimit.hit(services.redis, f"login:addr:{client_address(request)}", limit * 5, 60)
    account, password_hash = await find_for_login(services, body.username)
    # The same answer for an unknown user and a wrong password.
    # argon2 is slow on purpose: keep it off the event loop.
    if not await asyncio.to_thread(verify_password, password_hash, body.password) or account is None:
        raise AppError("unauthorized", "wrong username or password")
    token = issue_token(services.settings.secret_key, account.id, services.settings.token_ttl_s)
    return web.json_response({"token": token, "user": account.public()})


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    account = await require_account(request)
    return web.json_response(account.public())
