"""A bystander's latency while one user floods at the caps (issue 18): printed, never asserted.

python -m bench.flood                 15 s per phase, caps as shipped, then with the caps lifted
python -m bench.flood --seconds 30    longer phases
python -m bench.flood --no-write      print only; leave docs/benchmarks.md alone

Two instances on one Redis. Two bystanders (a nurse at Ba Vì on instance A, a clinician at Tiên
Yên on B) each send `presence:set` 25 times a second and `GET /api/me` 5 times a second, and
their round trips are recorded: first with nobody flooding, then while a clinician at Ba Vì
floods from another process: as many sockets as they can open (twelve tried, alternating
instances), four `presence:set` in flight on each, four `GET /api/me` loops, new routine and
emergency requests one after another, and `consult:join` of their active consult from every
socket in turn (each join takes the seat from the last). The same flood runs again against a
service whose caps are lifted by its settings, to show what the caps spare the bystanders.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench import report
from bench.cluster import PASSWORD, Cluster
from bench.request_offer import percentile
from bench.servers import LOADGEN_CPUS, SERVER_CPUS

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- flood -->", "<!-- /flood -->"

FLOODER = "bavi.clinician"
BYSTANDERS = ("bavi.nurse", "tienyen.clinician")
SOCKETS_TRIED = 12
EVENTS_PER_S, HTTP_PER_S = 25.0, 5.0
# Not measured: the bystanders' first seconds (they warm the instances up), and the flood's
# first seconds (it spends the burst of its bucket).
WARM_UP_S = 3.0

# The bench's own instances lift every limit (bench/cluster.py); here they are put back as shipped.
CAPS_SHIPPED: dict[str, str] = {
    "RATE_EVENTS_BURST": "200",
    "RATE_EVENTS_PER_S": "50",
    "MAX_OPEN_REQUESTS": "3",
    "MAX_OPEN_EMERGENCIES": "1",
    "MAX_SOCKETS_PER_USER": "8",
}
CAPS_LIFTED: dict[str, str] = {
    "RATE_EVENTS_BURST": "1000000",
    "RATE_EVENTS_PER_S": "1000000",
    "MAX_OPEN_REQUESTS": "1000",
    "MAX_OPEN_EMERGENCIES": "1000",
    "MAX_SOCKETS_PER_USER": "10000",
}


async def _login(url: str, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/login", json={"username": username, "password": PASSWORD}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return str(body["token"])


async def _socket(url: str, token: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


def _code(ack: Any) -> str:
    if isinstance(ack, dict) and ack.get("ok") is False:
        return str(ack.get("error", {}).get("code", "?"))
    return "ok"


# The flood, in a process of its own: its client work must not slow the bystanders' clients.


def _flood_process(urls: list[str], token: str, consult_id: str, seconds: float, out: Any) -> None:
    if LOADGEN_CPUS is not None:
        import os

        os.sched_setaffinity(0, {int(LOADGEN_CPUS)})
    out.put(asyncio.run(_flood(urls, token, consult_id, seconds)))


async def _flood(urls: list[str], token: str, consult_id: str, seconds: float) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    sockets: list[socketio.AsyncClient] = []
    for i in range(SOCKETS_TRIED):
        try:
            sockets.append(await _socket(urls[i % len(urls)], token))
            counts["socket:ok"] += 1
        except socketio.exceptions.ConnectionError:
            counts["socket:refused"] += 1
    deadline = time.monotonic() + seconds
    ops = itertools.count()

    async def events(client: socketio.AsyncClient) -> None:
        while time.monotonic() < deadline:
            ack = await client.call("presence:set", {"status": "away"}, timeout=30)
            counts[f"event:{_code(ack)}"] += 1

    async def requests(client: socketio.AsyncClient) -> None:
        for urgency in itertools.cycle(("emergency", "routine")):
            if time.monotonic() >= deadline:
                return
            payload = {
                "op_id": f"flood-{next(ops)}-{time.time_ns()}",
                "specialty": "surgery",
                "urgency": urgency,
                "patient": {"ref": "FLOOD", "summary": "flood"},
            }
            counts[f"request:{_code(await client.call('consult:request', payload, timeout=30))}"] += 1

    async def joins() -> None:
        for client in itertools.cycle(sockets):
            if time.monotonic() >= deadline:
                return
            ack = await client.call("consult:join", {"consult_id": consult_id}, timeout=30)
            counts[f"join:{_code(ack)}"] += 1

    async def http_loop(n: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            while time.monotonic() < deadline:
                async with http.get(f"{urls[n % len(urls)]}/api/me") as resp:
                    await resp.read()
                    counts[f"http:{resp.status}"] += 1

    tasks = [events(s) for s in sockets for _ in range(4)]
    tasks += [http_loop(n) for n in range(4)]
    if sockets:
        tasks += [requests(sockets[0]), joins()]
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in sockets:
        await client.disconnect()
    return dict(counts)


# The bystanders.


async def _bystanders(urls: list[str], tokens: list[str], seconds: float) -> dict[str, list[float]]:
    clients = [await _socket(urls[i % len(urls)], token) for i, token in enumerate(tokens)]
    events: list[float] = []
    http_ms: list[float] = []
    deadline = time.monotonic() + seconds

    async def ping(client: socketio.AsyncClient) -> None:
        start = time.monotonic()
        for n in itertools.count():
            scheduled = start + n / EVENTS_PER_S
            if scheduled >= deadline:
                return
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            sent = time.perf_counter()
            ack = await client.call("presence:set", {"status": "available"}, timeout=30)
            assert ack.get("ok"), ack
            events.append((time.perf_counter() - sent) * 1000)

    async def fetch(url: str, token: str) -> None:
        start = time.monotonic()
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            for n in itertools.count():
                scheduled = start + n / HTTP_PER_S
                if scheduled >= deadline:
                    return
                await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
                sent = time.perf_counter()
                async with http.get(f"{url}/api/me") as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                http_ms.append((time.perf_counter() - sent) * 1000)

    await asyncio.gather(*(ping(c) for c in clients), *(fetch(urls[i % len(urls)], t) for i, t in enumerate(tokens)))
    for client in clients:
        await client.disconnect()
    return {"events": events, "http": http_ms}


def _figures(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p99": percentile(values, 99),
        "max": max(values),
    }


async def _active_consult(urls: list[str], flooder: str) -> str:
    """An active consult of the flooder's, accepted by a surgeon at Xanh Pôn, for the joins."""
    surgeon = await _socket(urls[-1], await _login(urls[-1], "xanhpon.surgeon"))
    offered: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    surgeon.on("consult:offer", lambda data: offered.done() or offered.set_result(data["consult"]["id"]))
    clinician = await _socket(urls[0], flooder)
    payload = {"op_id": f"flood-setup-{time.time_ns()}", "specialty": "surgery", "urgency": "routine"}
    ack = await clinician.call("consult:request", {**payload, "patient": {"ref": "FLOOD"}}, timeout=30)
    assert ack.get("ok"), ack
    consult_id = await asyncio.wait_for(offered, 30)
    accepted = await surgeon.call("consult:accept", {"consult_id": consult_id}, timeout=30)
    assert accepted.get("ok"), accepted
    await clinician.disconnect()
    await surgeon.disconnect()
    return consult_id


async def _measure(urls: list[str], seconds: float) -> dict[str, Any]:
    flooder = await _login(urls[0], FLOODER)
    tokens = [await _login(urls[0], name) for name in BYSTANDERS]
    consult_id = await _active_consult(urls, flooder)
    await _bystanders(urls, tokens, WARM_UP_S)  # not counted: the instances' first requests warm them up
    quiet = await _bystanders(urls, tokens, seconds)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_flood_process, args=(urls, flooder, consult_id, seconds + WARM_UP_S + 1, out))
    process.start()
    await asyncio.sleep(WARM_UP_S)
    flooded = await _bystanders(urls, tokens, seconds)
    counts = await asyncio.to_thread(out.get, True, 120)
    await asyncio.to_thread(process.join, 30)
    return {
        "quiet": {k: _figures(v) for k, v in quiet.items()},
        "flood": {k: _figures(v) for k, v in flooded.items()},
        "counts": counts,
    }


def run(seconds: float, env: dict[str, str]) -> dict[str, Any]:
    cluster = Cluster(instances=2, env=env, cpus=SERVER_CPUS)
    cluster.start()
    try:
        return asyncio.run(_measure(cluster.urls, seconds))
    finally:
        cluster.stop()


def _row(name: str, phase: dict[str, dict[str, float]]) -> str:
    e, h = phase["events"], phase["http"]
    return (
        f"| {name} | {e['p50']:.1f} / **{e['p99']:.1f}** / {e['max']:.1f} ms ({e['n']:.0f}) "
        f"| {h['p50']:.1f} / **{h['p99']:.1f}** / {h['max']:.1f} ms ({h['n']:.0f}) |"
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def section(results: dict[str, dict[str, Any]], command: str, seconds: float, load: str) -> str:
    shipped, lifted = results["shipped"], results["lifted"]
    return (
        f"{START}\n## Flood: a bystander while one user floods at the caps\n\n"
        f"Command: `{command}` · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · load average {load} at the start\n\n"
        "Two instances on one Redis (servers and Redis on core 0, clients on core 1). Two bystanders, one per "
        f"instance, each send `presence:set` {EVENTS_PER_S:g}/s and `GET /api/me` {HTTP_PER_S:g}/s; round trips "
        f"over {seconds:g} s, first with nobody flooding, then while a clinician floods from another process: "
        f"{SOCKETS_TRIED} sockets tried, 4 `presence:set` in flight on each, 4 `GET /api/me` loops, new "
        "requests (emergency and routine in turn) and `consult:join` of their active consult from every "
        "socket in turn (bench/flood.py). Then the same against a service with the caps lifted by its settings. "
        "The flood is bound by its own client's CPU (one Python process), so it shows what the caps refuse and "
        "what that costs the others, not the most a client could send. Read the rows against the load average: "
        "with other work on the machine, the noise between phases can exceed what the flood adds. "
        "Printed, not asserted.\n\n"
        "| phase | bystander `presence:set` p50 / p99 / max (samples) | bystander `GET /api/me` p50 / p99 / max |\n"
        "| --- | --- | --- |\n"
        f"{_row('nobody flooding', shipped['quiet'])}\n"
        f"{_row('one user flooding, caps as shipped', shipped['flood'])}\n"
        f"{_row('nobody flooding, caps lifted', lifted['quiet'])}\n"
        f"{_row('one user flooding, caps lifted', lifted['flood'])}\n\n"
        f"What the flood got, caps as shipped: {_counts(shipped['counts'])}.\n\n"
        f"With the caps lifted: {_counts(lifted['counts'])}.\n"
        f"{END}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each measured phase (default 15)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    load = report.loadavg()
    print(f"flood: bystanders' latency, {args.seconds:g} s per phase; load average {load}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    for name, env in (("shipped", CAPS_SHIPPED), ("lifted", CAPS_LIFTED)):
        result = results[name] = run(args.seconds, env)
        print(f"  caps {name}:", flush=True)
        for phase in ("quiet", "flood"):
            for kind in ("events", "http"):
                f = result[phase][kind]
                print(
                    f"    {phase:5} {kind:6} p50 {f['p50']:6.1f} ms  p99 {f['p99']:6.1f} ms  max {f['max']:6.1f} ms  "
                    f"({f['n']:.0f} samples)",
                    flush=True,
                )
        print(f"    flood: {_counts(result['counts'])}", flush=True)
    if not args.no_write:
        command = report.command_line("bench.flood", argv)
        report.write_section(DOC, START, END, section(results, command, args.seconds, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
