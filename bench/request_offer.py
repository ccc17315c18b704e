"""Request → offer latency: a clinician on one instance asks, a specialist on another is offered.

Each request is measured from just before `consult:request` is sent to the moment the offered
specialist's client receives `consult:offer`. The clinician then cancels, so the specialists
stay free. Requests go out at a steady rate (open loop), not one after another's answer.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from typing import Any

import aiohttp
import socketio

from bench.cluster import PASSWORD, Cluster


async def _token(url: str, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/login", json={"username": username, "password": PASSWORD}) as resp:
            return str((await resp.json())["token"])


async def _client(url: str, username: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, auth={"token": await _token(url, username)}, transports=["websocket"])
    return client


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(cluster: Cluster, requests: int, rate_per_s: float, specialists: int) -> dict[str, Any]:
    a, b = cluster.urls[0], cluster.urls[-1]
    offered_at: dict[str, float] = {}
    arrived: dict[str, asyncio.Event] = {}

    async def on_offer(data: dict[str, Any]) -> None:
        consult_id = data["consult"]["id"]
        offered_at.setdefault(consult_id, time.perf_counter())
        arrived.setdefault(consult_id, asyncio.Event()).set()

    doctors = []
    for i in range(specialists):
        doctor = await _client(b, f"bench.surgeon{i}")
        doctor.on("consult:offer", on_offer)
        doctors.append(doctor)
    clinician = await _client(a, "bavi.clinician")
    await asyncio.sleep(0.5)
    ops = itertools.count()
    latencies: list[float] = []

    async def one() -> None:
        sent = time.perf_counter()
        ack = await clinician.call(
            "consult:request",
            {
                "op_id": f"bench-{next(ops)}-{time.time_ns()}",
                "specialty": "surgery",
                "urgency": "routine",
                "patient": {"ref": "BENCH", "summary": "benchmark"},
            },
            timeout=30,
        )
        consult_id = ack["consult"]["id"]
        await asyncio.wait_for(arrived.setdefault(consult_id, asyncio.Event()).wait(), 30)
        latencies.append(offered_at[consult_id] - sent)
        await clinician.call("consult:cancel", {"consult_id": consult_id}, timeout=30)

    tasks = []
    start = time.perf_counter()
    for i in range(requests):
        delay = start + i / rate_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    for client in [clinician, *doctors]:
        await client.disconnect()
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms),
        "rate_per_s": rate_per_s,
        "p50_ms": statistics.median(ms),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
    }


def run(requests: int = 200, rate_per_s: float = 10.0, specialists: int = 50) -> dict[str, Any]:
    cluster = Cluster(instances=2, extra_specialists=specialists)
    cluster.start()
    try:
        return asyncio.run(measure(cluster, requests, rate_per_s, specialists))
    finally:
        cluster.stop()
