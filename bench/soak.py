"""Soak: 1,000 connected clients (500 calls across two instances) for N minutes with steady
signaling and notes; the figure is the instances' memory growth and the error count.

Growth is measured from the end of a warm-up (a fifth of the run, at most five minutes: caches,
pools and the allocator settle first) to the end, on the sum of both instances' RSS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import fixtures as fixture_data
from bench import loadgen
from bench.servers import Telerounds

CLIENTS = 1000


def run(workdir: Path, minutes: float, signal_rate: float = 100.0, note_rate: float = 2.0) -> dict[str, Any]:
    rooms = CLIENTS // 2
    fixtures = fixture_data.prepare(workdir, rooms=rooms, idle=0)
    server = Telerounds("telerounds ×2", 2, fixtures, workdir)
    server.start()
    seconds = minutes * 60
    sample_s = max(5.0, min(30.0, seconds / 20))

    def show(line: dict[str, Any]) -> None:
        if line["type"] == "sample":
            rss = sum(v or 0 for v in line["rss_kb"].values()) / 1024
            print(f"  {line['t_s']:6.0f} s  RSS {rss:6.1f} MB  delivered {line['delivered']}  errors {line['errors']}")

    try:
        lines = loadgen.run(
            {
                "mode": "soak",
                "target": {
                    "name": server.name,
                    "kind": "socketio",
                    "pids": server.pids,
                    "rooms": server.rooms(fixtures, rooms),
                },
                "rooms": rooms,
                "rate": signal_rate,
                "note_rate": note_rate,
                "seconds": seconds,
                "sample_s": sample_s,
            },
            on_line=show,
        )
    finally:
        server.stop()
    result = next(line for line in lines if line["type"] == "result")
    samples = [(s["t_s"], sum(v or 0 for v in s["rss_kb"].values()) / 1024) for s in result["samples"]]
    warm = min(seconds / 5, 300.0)
    start_mb = next(mb for t, mb in samples if t >= warm)
    end_mb = samples[-1][1]
    return {
        "minutes": minutes,
        "clients": rooms * 2,
        "signal_rate": signal_rate,
        "note_rate": note_rate,
        "signals": result["signals"],
        "notes": result["notes"],
        "errors": result["errors"],
        "error_kinds": result["error_kinds"],
        "p99_ms": result["p99"],
        "start_mb": start_mb,
        "end_mb": end_mb,
        "growth_pct": 100 * (end_mb - start_mb) / start_mb,
    }
