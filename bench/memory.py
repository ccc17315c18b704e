"""S3: memory per idle connection and the connect rate, on a fresh server each time.

Connections are added in steps (e.g. 1k, then to 3k, then to 5k); after each step settles, the
server's RSS is read. Per connection = (RSS at N − RSS with none) / N. A telerounds connection
is a real one: a token, an account, presence in Redis and `session:state` sent back.
"""

from __future__ import annotations

from typing import Any

from bench import loadgen
from bench.fixtures import Fixtures
from bench.servers import Server


def run(server: Server, fixtures: Fixtures, steps: list[int]) -> dict[str, Any]:
    server.start()
    try:
        lines = loadgen.run(
            {
                "mode": "idle",
                "target": {"name": server.name, "pids": server.pids, "sides": server.sides(fixtures.idle_tokens)},
                "steps": steps,
                "concurrency": 50,
                "settle": 2,
            }
        )
    finally:
        server.stop()
    base = sum(v or 0 for v in lines[0]["rss_kb"].values())
    points = []
    for line in lines[1:]:
        rss = sum(v or 0 for v in line["rss_kb"].values())
        points.append(
            {
                "connections": line["connections"],
                "rss_mb": rss / 1024,
                "kb_per_connection": (rss - base) / line["connections"],
                "connect_per_s": line["connect_per_s"],
            }
        )
        print(
            f"  {server.name:<28} {line['connections']:>5} idle: {(rss - base) / line['connections']:.1f} KB each"
            f" (RSS {rss / 1024:.0f} MB), connected at {line['connect_per_s']:.0f}/s",
            flush=True,
        )
    return {"server": server.name, "base_mb": base / 1024, "points": points}
