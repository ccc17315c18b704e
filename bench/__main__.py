"""`make bench`: run the benchmarks, print their figures and write docs/benchmarks.md.

python -m bench            # short mode
python -m bench --full     # more requests
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import calls, request_offer

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--full", action="store_true", help="more requests (slower)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    requests = 1000 if args.full else 200
    command = "make bench" + (" BENCH_ARGS=--full" if args.full else "")

    print(f"S4 request → offer: {requests} requests at 10/s, 50 available specialists, two instances", flush=True)
    s4 = request_offer.run(requests=requests, rate_per_s=10.0, specialists=50)
    print(f"  p50 {s4['p50_ms']:.1f} ms  p99 {s4['p99_ms']:.1f} ms  max {s4['max_ms']:.1f} ms", flush=True)

    messages = 5000 if args.full else 2000
    print(f"S1/S5 calls: relay hop at 200 msg/s x {messages}, aiortc offer → connected x 10, two instances", flush=True)
    call = calls.run(messages=messages, rate_per_s=200.0, calls=10)
    relay, connect = call["relay"], call["connect"]
    print(f"  relay p50 {relay['p50_ms']:.2f} ms  p99 {relay['p99_ms']:.2f} ms", flush=True)
    print(
        f"  offer → connected p50 {connect['p50_ms']:.0f} ms"
        f"  (min {connect['min_ms']:.0f}, max {connect['max_ms']:.0f})"
    )

    if not args.no_write:
        DOC.write_text(
            "# Benchmarks\n\n"
            f"Command: `{command}` · date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · machine: {machine()}\n\n"
            "Figures are measured, never asserted in tests. Everything runs on loopback on this machine.\n\n"
            "## S4 request → offer latency\n\n"
            "A clinician connected to instance A asks for a surgery consult; one of 50 available surgeons "
            "connected to instance B receives `consult:offer`. Measured from just before the request is "
            "sent to the offer's arrival; the clinician then cancels. Two instances (separate processes), "
            "one embedded Redis, SQLite; requests sent at a steady rate (open loop).\n\n"
            "| requests | rate | p50 | p99 | max |\n| --- | --- | --- | --- | --- |\n"
            f"| {s4['requests']} | {s4['rate_per_s']:.0f}/s | {s4['p50_ms']:.1f} ms | {s4['p99_ms']:.1f} ms "
            f"| {s4['max_ms']:.1f} ms |\n\n"
            "## Relay hop latency (one call)\n\n"
            "A specialist's client on instance B sends `rtc:signal` ICE candidates to a clinician's client on "
            "instance A at a fixed rate (open loop, no waiting for acks); one-way latency from send to "
            "arrival, both clients in the same process and clock, so every message crosses Redis.\n\n"
            "| messages | rate | p50 | p99 |\n| --- | --- | --- | --- |\n"
            f"| {relay['messages']} | {relay['rate_per_s']:.0f}/s "
            f"| {relay['p50_ms']:.2f} ms | {relay['p99_ms']:.2f} ms |\n\n"
            "## Offer → connected (aiortc ↔ aiortc through the server)\n\n"
            "Two aiortc peers (`iceServers: []`, host candidates, one video track) signal through two "
            "instances; from `createOffer` to the offerer's `connectionState == connected`.\n\n"
            "| calls | p50 | min | max |\n| --- | --- | --- | --- |\n"
            f"| {connect['calls']} | {connect['p50_ms']:.0f} ms "
            f"| {connect['min_ms']:.0f} ms | {connect['max_ms']:.0f} ms |\n"
        )
        print(f"wrote {DOC.relative_to(Path.cwd()) if DOC.is_relative_to(Path.cwd()) else DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
