"""S1, S2 and S6: the relay hop, with every server running at once and the load generator
alternating between them phase by phase, round by round (A B C … then … C B A)."""

from __future__ import annotations

from typing import Any

from bench import loadgen
from bench.fixtures import Fixtures
from bench.servers import Server

RATE = 200.0  # S1's offered load, messages/s in all, spread over the rooms


def phases(full: bool, main: list[str]) -> list[dict[str, Any]]:
    """S1 at each room count (open loop at RATE), then S2 (closed loop, 100 rooms, one message in
    flight per room)."""
    rooms = (10, 100, 500) if full else (10, 100)  # joining 500 calls on telerounds takes a minute
    return [_s1(full, n, main) for n in rooms] + [_s2(full, main)]


def step_phases(full: bool, steps: list[str]) -> list[dict[str, Any]]:
    """The optimization steps: S1 at 100 rooms and S2 only."""
    return [_s1(full, 100, steps), _s2(full, steps)]


def _timing(full: bool) -> tuple[float, float, float]:
    """Seconds of S1, of S2, and of the warm-up before each."""
    return (7.0, 5.0, 1.0) if full else (2.0, 2.0, 0.5)


def _s1(full: bool, rooms: int, targets: list[str]) -> dict[str, Any]:
    s1_s, _, warmup = _timing(full)
    return {
        "name": "S1",
        "kind": "open",
        "rooms": rooms,
        "rate": RATE,
        "seconds": s1_s,
        "warmup": warmup,
        "targets": targets,
    }


def _s2(full: bool, targets: list[str]) -> dict[str, Any]:
    _, s2_s, warmup = _timing(full)
    return {
        "name": "S2",
        "kind": "closed",
        "rooms": 100,
        "window": 1,
        "seconds": s2_s,
        "warmup": warmup,
        "targets": targets,
    }


def run(servers: list[Server], fixtures: Fixtures, plan: list[dict[str, Any]], rounds: int) -> list[dict[str, Any]]:
    most = max(p["rooms"] for p in plan)  # the load generator opens only what each target uses
    started: list[Server] = []
    try:
        for server in servers:
            server.start()
            started.append(server)
        print(f"  started {', '.join(s.name for s in servers)}", flush=True)
        targets = [server.plan(fixtures, most) for server in servers]
        return loadgen.run(
            {"mode": "relay", "targets": targets, "phases": plan, "rounds": rounds},
            on_line=_show,
        )
    finally:
        for server in started:
            server.stop()


def _show(line: dict[str, Any]) -> None:
    if line.get("type") != "result":
        return
    head = f"  r{line['round']} {line['phase']} {line['rooms']:>3} rooms  {line['target']:<28}"
    if line["kind"] == "open":
        body = (
            f"p50 {line['p50']:.2f}  p95 {line['p95']:.2f}  p99 {line['p99']:.2f} ms"
            if line["p50"] is not None
            else "no deliveries"
        )
    else:
        per_cpu = line["per_server_cpu_s"]
        body = f"{line['per_s']:.0f} msg/s  {per_cpu:.0f} msg/CPU-s" if per_cpu else f"{line['per_s']:.0f} msg/s"
    extra = f"  errors {line['errors']}" if line["errors"] else ""
    print(f"{head} {body}  (server CPU {line['server_cpu_pct']:.0f} %, loadgen {line['loadgen_cpu_pct']:.0f} %){extra}")
