"""`/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import aiohttp

from tests.conftest import Instance, StartInstance


async def test_health_ready_and_metrics(instance: Instance) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{instance.url}/readyz") as resp:
            assert resp.status == 200
            assert (await resp.json())["checks"] == {"redis": "ok", "database": "ok", "pubsub": "ok"}
        async with http.get(f"{instance.url}/metrics") as resp:
            text = await resp.text()
            assert resp.status == 200
            assert "telerounds_build_info" in text
            assert "telerounds_http_requests_total" in text


async def test_readyz_says_which_dependency_is_down(start_instance: StartInstance, tmp_path) -> None:
    instance = await start_instance(database=f"sqlite+aiosqlite:///{tmp_path}/missing-dir/x.db")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 503
            assert body["checks"]["redis"] == "ok"
            assert body["checks"]["database"].startswith("unavailable")


async def test_static_app_is_served(instance: Instance) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/") as resp:
            assert resp.status == 200
            assert "telerounds" in (await resp.text()).lower()
