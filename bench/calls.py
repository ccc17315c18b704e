"""Calls through the server: relay hop latency (S1-style, one room) and aiortc offer → connected (S5).

Both use two instances: the clinician's client on instance A, the specialist's on instance B, so
every relayed message crosses Redis.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import VideoStreamTrack

from bench.cluster import Cluster
from bench.request_offer import _client, percentile


async def _active_call(cluster: Cluster) -> tuple[Any, Any, str, dict[str, Any], dict[str, Any]]:
    a, b = cluster.urls[0], cluster.urls[-1]
    clinician = await _client(a, "bavi.clinician")
    surgeon = await _client(b, "xanhpon.surgeon")
    offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    surgeon.on("consult:offer", offers.put_nowait)
    await asyncio.sleep(0.3)
    ack = await clinician.call(
        "consult:request",
        {"op_id": f"bench-{time.time_ns()}", "specialty": "surgery", "urgency": "routine", "patient": {"ref": "B"}},
    )
    consult_id = ack["consult"]["id"]
    await asyncio.wait_for(offers.get(), 10)
    await surgeon.call("consult:accept", {"consult_id": consult_id})
    first = await clinician.call("consult:join", {"consult_id": consult_id})
    second = await surgeon.call("consult:join", {"consult_id": consult_id})
    return clinician, surgeon, consult_id, first, second


async def relay_latency(cluster: Cluster, messages: int, rate_per_s: float) -> dict[str, Any]:
    clinician, surgeon, consult_id, first, _ = await _active_call(cluster)
    latencies: list[float] = []
    done = asyncio.Event()

    async def on_signal(data: dict[str, Any]) -> None:
        sent = float(data["data"]["candidate"]["candidate"].split()[-1])
        latencies.append(time.perf_counter() - sent)
        if len(latencies) == messages:
            done.set()

    clinician.on("rtc:signal", on_signal)
    start = time.perf_counter()
    for i in range(messages):
        delay = start + i / rate_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        candidate = f"candidate:{i} 1 udp 1 192.0.2.2 9 typ host ts {time.perf_counter()}"
        await surgeon.emit(
            "rtc:signal",
            {"consult_id": consult_id, "to": first["peer_id"], "data": {"candidate": {"candidate": candidate}}},
        )
    try:
        await asyncio.wait_for(done.wait(), 30)
    except TimeoutError:
        raise RuntimeError(f"only {len(latencies)} of {messages} relayed messages arrived") from None
    for client in (clinician, surgeon):
        await client.disconnect()
    ms = [x * 1000 for x in latencies]
    return {
        "messages": messages,
        "rate_per_s": rate_per_s,
        "p50_ms": statistics.median(ms),
        "p99_ms": percentile(ms, 99),
    }


async def offer_to_connected(cluster: Cluster, calls: int) -> dict[str, Any]:
    times = [await _one_call(cluster) for _ in range(calls)]
    return {"calls": calls, "p50_ms": statistics.median(times), "max_ms": max(times), "min_ms": min(times)}


async def _one_call(cluster: Cluster) -> float:
    """Milliseconds from creating the offer to the offerer's connection being `connected`."""
    clinician, surgeon, consult_id, first, _ = await _active_call(cluster)
    signals: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    clinician.on("rtc:signal", signals.put_nowait)
    answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    surgeon.on("rtc:signal", answers.put_nowait)
    caller = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    callee = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    caller.addTrack(VideoStreamTrack())
    connected = asyncio.Event()

    @caller.on("connectionstatechange")
    def state() -> None:
        if caller.connectionState == "connected":
            connected.set()

    async def answer() -> None:
        message = await signals.get()
        await callee.setRemoteDescription(RTCSessionDescription(**message["data"]))
        await callee.setLocalDescription(await callee.createAnswer())
        await clinician.call(
            "rtc:signal",
            {
                "consult_id": consult_id,
                "to": message["from"],
                "data": {"type": "answer", "sdp": callee.localDescription.sdp},
            },
        )

    started = time.perf_counter()
    answering = asyncio.create_task(answer())
    await caller.setLocalDescription(await caller.createOffer())
    await surgeon.call(
        "rtc:signal",
        {
            "consult_id": consult_id,
            "to": first["peer_id"],
            "data": {"type": "offer", "sdp": caller.localDescription.sdp},
        },
    )
    reply = await asyncio.wait_for(answers.get(), 10)
    await caller.setRemoteDescription(RTCSessionDescription(**reply["data"]))
    await answering
    await asyncio.wait_for(connected.wait(), 20)
    elapsed = (time.perf_counter() - started) * 1000
    await caller.close()
    await callee.close()
    await clinician.call("consult:end", {"consult_id": consult_id, "outcome": "treated_locally"})
    for client in (clinician, surgeon):
        await client.disconnect()
    return elapsed


def run(messages: int = 2000, rate_per_s: float = 200.0, calls: int = 10) -> dict[str, Any]:
    cluster = Cluster(instances=2)
    cluster.start()
    try:
        relay = asyncio.run(relay_latency(cluster, messages, rate_per_s)) if messages else None
        connect = asyncio.run(offer_to_connected(cluster, calls))
        return {"relay": relay, "connect": connect}
    finally:
        cluster.stop()
