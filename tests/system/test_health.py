"""`/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import aiohttp

from server.http.health import may_scrape
from tests.conftest import Instance, StartInstance
from tests.system.test_notes import note
from tests.system.test_rtc import active_consult, join


async def test_health_ready_and_metrics(instance: Instance) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{instance.url}/readyz") as resp:
            assert resp.status == 200
            assert (await resp.json())["checks"] == {"redis": "ok", "database": "ok", "pubsub": "ok", "blobs": "ok"}
        async with http.get(f"{instance.url}/metrics") as resp:
            text = await resp.text()
            assert resp.status == 200
            assert "telerounds_build_info" in text
            assert "telerounds_http_requests_total" in text


async def test_metrics_ask_for_the_scrapers_token_once_one_is_set(start_instance: StartInstance) -> None:
    instance = await start_instance(METRICS_TOKEN="scraper-token-of-the-province")
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scraper-token-of-the-province"}):
            async with http.get(f"{instance.url}/metrics", headers=headers) as resp:
                body = await resp.json()
                assert (resp.status, body["error"]["code"]) == (403, "forbidden"), headers
                assert "METRICS_TOKEN" in body["error"]["message"]
        headers = {"Authorization": "Bearer scraper-token-of-the-province"}
        async with http.get(f"{instance.url}/metrics", headers=headers) as resp:
            assert resp.status == 200 and "telerounds_build_info" in await resp.text()


def test_without_a_token_only_this_host_may_scrape() -> None:
    assert may_scrape("127.0.0.1", None, "") and may_scrape("::1", None, "")
    for remote in ("10.0.0.5", "192.168.1.20", "203.0.113.7", "", None, "not-an-address"):
        assert not may_scrape(remote, None, ""), remote
    assert may_scrape("203.0.113.7", "t0ken", "t0ken") and not may_scrape("127.0.0.1", None, "t0ken")


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


async def scrape(instance: Instance) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{instance.url}/metrics") as resp:
        return await resp.text()


async def test_metrics_count_a_consult_across_instances(two_instances, clients) -> None:
    a, b = two_instances
    clinician, _surgeon, consult = await active_consult(clients, a, b)
    await join(clinician, consult["id"])
    assert (await clinician.call("note:add", note(consult["id"])))["ok"]
    for text in (await scrape(a), await scrape(b)):  # state read from Redis: the same on each instance
        assert "telerounds_active_consults 1.0" in text
        assert 'telerounds_queue_length{specialty="surgery"} 0.0' in text
    accepted_on_b = await scrape(b)
    assert "telerounds_consult_wait_seconds_count 1.0" in accepted_on_b
    assert 'telerounds_consult_offers_total{urgency="routine"} 1.0' in await scrape(a)
    assert "telerounds_note_writes_total 1.0" in await scrape(a)
    assert "telerounds_call_reconnects_total" in accepted_on_b
