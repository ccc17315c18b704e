"""Login and `/api/me` for every demo account; refusals that do not say which part was wrong."""

from __future__ import annotations

import aiohttp
import pytest

from server.runtime.demo import USERS
from tests.conftest import Instance, login


@pytest.mark.parametrize("demo", USERS, ids=[u.username for u in USERS])
async def test_every_demo_login_works_and_me_tells_the_role(instance: Instance, demo) -> None:
    token = await login(instance.url, demo.username)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
            user = await resp.json()
    assert user["role"] == demo.role
    assert user["hospital"]["id"] == demo.hospital_id
    assert user["specialties"] == list(demo.specialties)
    assert set(user) == {"id", "name", "role", "hospital", "specialties"}


async def test_wrong_password_and_unknown_user_get_the_same_401(instance: Instance) -> None:
    async with aiohttp.ClientSession() as http:
        answers = []
        for body in ({"username": "bavi.clinician", "password": "nope"}, {"username": "nobody", "password": "demo"}):
            async with http.post(f"{instance.url}/api/login", json=body) as resp:
                answers.append((resp.status, await resp.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401
    assert answers[0][1]["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{not json", 400),
        (b"[]", 400),
        (b'{"username": "bavi.clinician"}', 400),
        (b'{"username": 5, "password": "demo"}', 400),
        (b'{"username": "bavi.clinician", "password": "demo", "extra": 1}', 400),
        (b"\xff\xfe", 400),
        (b"x" * 300_000, 413),
    ],
)
async def test_bad_login_bodies_get_a_clear_4xx(instance: Instance, body: bytes, status: int) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{instance.url}/api/login", data=body) as resp:
            assert resp.status == status
            answer = await resp.json()
    assert answer["error"]["message"]


async def test_login_attempts_are_limited_per_username_across_instances(start_instance) -> None:
    first = await start_instance(LOGIN_ATTEMPTS_PER_MINUTE="3")
    second = await start_instance(LOGIN_ATTEMPTS_PER_MINUTE="3")
    statuses = []
    async with aiohttp.ClientSession() as http:
        for n in range(5):
            target = (first, second)[n % 2]
            body = {"username": "xanhpon.icu", "password": "wrong"}
            async with http.post(f"{target.url}/api/login", json=body) as resp:
                statuses.append(resp.status)
        # Even the right password waits out the window.
        body = {"username": "xanhpon.icu", "password": "demo"}
        async with http.post(f"{first.url}/api/login", json=body) as resp:
            statuses.append(resp.status)
    assert statuses == [401, 401, 401, 429, 429, 429]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer not-a-token", "Basic abc", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
)
async def test_me_without_a_valid_token_is_401(instance: Instance, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/api/me", headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"
