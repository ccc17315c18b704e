"""`make bench`: measure telerounds against its peers in one run, print the figures, write docs/benchmarks.md.

python -m bench                       short mode (about 3 minutes): one round, fewer connections
python -m bench --full                full mode (under 15 minutes): two rounds, the optimization steps
python -m bench --steps               short mode with the optimization steps
python -m bench --soak --minutes 30   the soak only (its section of docs/benchmarks.md)
python -m bench --only S1,S3          some scenarios only (development; the document is not written)
python -m bench.flood                 a bystander's latency while one user floods at the caps (its section)
python -m bench.recording             recorded calls: CPU, memory, real time (its section)
python -m bench --browser-calls       calls in Chromium: accept → video, network back → video (its section;
                                      = python -m bench.browser_calls)
python -m bench --district-calls      calls in Chromium through coturn, over an emulated district link (its
                                      section, at the top; = python -m bench.district_calls)
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    browser_calls,
    calls,
    district_calls,
    fixtures,
    loadgen,
    memory,
    recording,
    relay,
    report,
    request_offer,
    servers,
    soak,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SOAK_START, SOAK_END = "<!-- soak -->", "<!-- /soak -->"
# Written by bench/flood.py; kept as it is.
FLOOD_START, FLOOD_END = "<!-- flood -->", "<!-- /flood -->"
# Written by hand from measured runs (what each optimization gained or cost); kept as it is.
GAINS_START, GAINS_END = "<!-- gains -->", "<!-- /gains -->"
# Written by hand from `python -m bench.looplag` runs (issue 18); kept as it is.
LOOPLAG_START, LOOPLAG_END = "<!-- looplag -->", "<!-- /looplag -->"
# Written by hand from `python -m bench --only S1,S2` runs before and after (issue 18); kept as it is.
AUTHZ_START, AUTHZ_END = "<!-- authz -->", "<!-- /authz -->"
# Written by bench/browser_calls.py (issue 20); kept as it is.
BROWSER_START, BROWSER_END = browser_calls.START, browser_calls.END
# Written by bench/recording.py (issue 22); kept as it is.
RECORDING_START, RECORDING_END = recording.START, recording.END
# Written by bench/district_calls.py (issue 23); kept as it is, at the top: the figures users feel.
DISTRICT_START, DISTRICT_END = district_calls.START, district_calls.END

T1, T2 = "telerounds ×1", "telerounds ×2"
N1, N2 = "node-socket.io ×1", "node-socket.io ×2"
B1 = "bare python-socketio ×1"

# The optimization steps, each a telerounds variant run through bench/variants.py: the current
# code with the later steps taken back, so each row adds one step to the row above. Each series
# runs in a session of its own, with a fresh "now" server: fewer idle servers share core 0.
STEPS_1 = [
    (
        "telerounds ×1 · GC, 3 trips, deflate, timed",
        ["--gc", "default", "--events", "separate", "--websocket", "deflate", "--redis-write", "timed"],
        "×1 before (uvloop; full GC walks startup objects; a signal: revocation, rate limit and "
        "room read in 3 round trips; WebSocket compressed; Redis writes under a timer)",
    ),
    (
        "telerounds ×1 · 3 trips, deflate, timed",
        ["--events", "separate", "--websocket", "deflate", "--redis-write", "timed"],
        "×1 + collector tuned (startup frozen, young generation 5,000)",
    ),
    (
        "telerounds ×1 · 2 trips, deflate, timed",
        ["--events", "one", "--websocket", "deflate", "--redis-write", "timed"],
        "×1 + revocation and rate limit in one EVALSHA",
    ),
    (
        "telerounds ×1 · 2 trips, timed",
        ["--events", "one", "--redis-write", "timed"],
        "×1 + WebSocket frames uncompressed",
    ),
    ("telerounds ×1 · 2 trips", ["--events", "one"], "×1 + Redis commands written with no timer armed"),
    ("telerounds ×1 · now", [], "×1 + the room read in the same EVALSHA: one round trip per signal (now)"),
]
STEPS_2 = [
    (
        "telerounds ×2 · GC, 3 trips, broadcast",
        ["--gc", "default", "--events", "separate", "--routing", "broadcast"],
        "×2 before (full GC walks startup objects; 3 round trips per signal; "
        "every emit to a socket through the shared channel)",
    ),
    ("telerounds ×2 · broadcast", ["--routing", "broadcast"], "×2 + collector tuned, one round trip per signal"),
    ("telerounds ×2 · now", [], "×2 + targeted routing: to the socket's instance only (now)"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--full", action="store_true", help="two rounds, longer phases, 5k connections, the steps")
    parser.add_argument("--steps", action="store_true", help="also measure the optimization steps (on in --full)")
    parser.add_argument("--soak", action="store_true", help="run the soak only")
    parser.add_argument(
        "--browser-calls", action="store_true", help="calls in Chromium only (bench/browser_calls.py; its section)"
    )
    parser.add_argument(
        "--district-calls", action="store_true", help="calls over a district link only (bench/district_calls.py)"
    )
    parser.add_argument("--calls", type=int, default=20, help="--browser-calls, --district-calls: calls to time")
    parser.add_argument("--minutes", type=float, default=30.0, help="soak duration (default 30)")
    parser.add_argument("--rounds", type=int, help="rounds of S1/S2 (default: 2 full, 1 short)")
    parser.add_argument("--only", help="comma-separated scenarios to run (S1 S2 S3 S4 S5); writes nothing")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    if args.browser_calls:
        return browser_calls.main([f"--calls={args.calls}"] + (["--no-write"] if args.no_write else []))
    if args.district_calls:
        return district_calls.main([f"--calls={args.calls}"] + (["--no-write"] if args.no_write else []))
    # Stopped with SIGTERM: unwind, so every server started is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    loadgen.ensure_node_packages()
    # The databases on tmpfs where there is one: the bench measures the service, not the disk's fsync.
    shm = Path("/dev/shm")
    workdir = Path(tempfile.mkdtemp(prefix="telerounds-bench-", dir=shm if shm.is_dir() else None))
    try:
        return _soak(args, workdir) if args.soak else _bench(args, argv, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _bench(args: argparse.Namespace, argv: list[str] | None, workdir: Path) -> int:
    full = args.full
    only = set(args.only.upper().split(",")) if args.only else {"S1", "S2", "S3", "S4", "S5"}
    rounds = args.rounds or (2 if full else 1)
    with_steps = full or args.steps
    command = "make bench" + (f' BENCH_ARGS="{" ".join(argv or sys.argv[1:])}"' if (argv or sys.argv[1:]) else "")
    started, load_before = time.monotonic(), report.loadavg()
    print(f"telerounds bench ({'full' if full else 'short'} mode, {rounds} round(s)); load average {load_before}")
    steps = [1000, 3000, 5000] if full else [1000]
    data = fixtures.prepare(workdir, rooms=500, idle=max(steps))
    out: dict[str, Any] = {}

    if only & {"S1", "S2"}:
        print(
            f"S1/S2/S6 relay: {relay.RATE:.0f} msg/s open loop at 10/100/500 rooms; closed loop at 100 rooms",
            flush=True,
        )
        main_servers: list[servers.Server] = [
            servers.Telerounds(T1, 1, data, workdir),
            servers.node_relay(1),
            servers.bare_relay(1),
            servers.Telerounds(T2, 2, data, workdir),
            servers.node_relay(2),
            servers.ws_echo(),
            servers.RedisPing(),
        ]
        names = [s.name for s in main_servers]
        out["relay"] = relay.run(main_servers, data, relay.phases(full, names), rounds)
        out["targets"] = names
        if with_steps:
            for series in (STEPS_1, STEPS_2):
                print("  optimization steps: " + ", ".join(name for name, _, _ in series), flush=True)
                step_servers: list[servers.Server] = [
                    servers.Telerounds(name, 2 if "×2" in name else 1, data, workdir, variant or None)
                    for name, variant, _ in series
                ]
                plan = relay.step_phases(full, [s.name for s in step_servers])
                out["relay"] += relay.run(step_servers, data, plan, rounds)

    if "S3" in only:
        print(f"S3 idle connections: {', '.join(map(str, steps))}, a fresh server each time", flush=True)
        out["memory"] = []
        # One round even in full mode: memory barely varies, and 5k telerounds connects take two minutes.
        for server in (servers.Telerounds(T1, 1, data, workdir), servers.node_relay(1), servers.bare_relay(1)):
            out["memory"].append(memory.run(server, data, steps))

    if "S4" in only:
        requests = 600 if full else 100
        print(f"S4 request → offer: {requests} requests at 10/s, 50 available specialists, two instances", flush=True)
        out["s4"] = request_offer.run(requests=requests, rate_per_s=10.0, specialists=50)
        s4 = out["s4"]
        print(f"  p50 {s4['p50_ms']:.1f} ms  p99 {s4['p99_ms']:.1f} ms  max {s4['max_ms']:.1f} ms", flush=True)

    if "S5" in only:
        count = 10 if full else 3
        print(f"S5 offer → connected: {count} aiortc calls through two instances", flush=True)
        out["s5"] = calls.run(messages=0, calls=count)["connect"]
        s5 = out["s5"]
        print(f"  p50 {s5['p50_ms']:.0f} ms (min {s5['min_ms']:.0f}, max {s5['max_ms']:.0f})", flush=True)

    minutes = (time.monotonic() - started) / 60
    print(f"done in {minutes:.1f} min; load average {load_before} before, {report.loadavg()} after")
    if not args.no_write and not args.only:
        meta = {"command": command, "minutes": minutes, "load_before": load_before, "load_after": report.loadavg()}
        DOC.write_text(_document(out, meta, rounds, with_steps))
        print(f"wrote {DOC}")
    return 0


def _soak(args: argparse.Namespace, workdir: Path) -> int:
    load_before = report.loadavg()
    print(f"soak: 1,000 clients for {args.minutes:g} min; load average {load_before}", flush=True)
    result = soak.run(workdir, args.minutes)
    ok = result["errors"] == 0 and result["growth_pct"] < 5
    print(
        f"  memory {result['start_mb']:.1f} → {result['end_mb']:.1f} MB ({result['growth_pct']:+.1f} %), "
        f"{result['signals']} signals, {result['notes']} notes, errors {result['errors']}: {'PASS' if ok else 'FAIL'}"
    )
    if not args.no_write:
        section = _soak_section(result, f'make bench BENCH_ARGS="--soak --minutes {args.minutes:g}"', load_before)
        text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
        if SOAK_START in text:
            text = re.sub(re.escape(SOAK_START) + ".*?" + re.escape(SOAK_END), lambda _: section, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n" + section + "\n"
        DOC.write_text(text)
        print(f"wrote {DOC}")
    return 0 if ok else 1


def _soak_section(r: dict[str, Any], command: str, load: str) -> str:
    kinds = ", ".join(f"{k}: {v}" for k, v in r["error_kinds"].items()) or "none"
    return (
        f"{SOAK_START}\n## Soak\n\n"
        f"Command: `{command}` · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · load average {load} at the start\n\n"
        f"{r['clients']} clients in {r['clients'] // 2} calls across two instances (one end on each), "
        f"{r['signal_rate']:.0f} `rtc:signal`/s and {r['note_rate']:g} `note:add`/s in all, for {r['minutes']:g} min. "
        "Memory is the sum of both instances' RSS, from the end of the warm-up (a fifth of the run, at most "
        "5 min) to the end. Aim: growth under 5 %, no errors.\n\n"
        "| minutes | signals | notes | errors | relay p99 | RSS after warm-up | RSS at the end | growth |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {r['minutes']:g} | {r['signals']} | {r['notes']} | {r['errors']} ({kinds}) | {r['p99_ms']:.1f} ms "
        f"| {r['start_mb']:.1f} MB | {r['end_mb']:.1f} MB | **{r['growth_pct']:+.1f} %** |\n"
        f"{SOAK_END}"
    )


def _kept(old: str, start: str, end: str) -> str:
    """A section of the old document written elsewhere (by hand or another command), kept as it is."""
    return old[old.index(start) : old.index(end) + len(end)] if end in old else ""


def _document(out: dict[str, Any], meta: dict[str, Any], rounds: int, with_steps: bool) -> str:
    old = DOC.read_text() if DOC.exists() else ""
    soak_section = _kept(old, SOAK_START, SOAK_END)
    flood_section = _kept(old, FLOOD_START, FLOOD_END)
    gains_section = _kept(old, GAINS_START, GAINS_END)
    looplag = _kept(old, LOOPLAG_START, LOOPLAG_END)
    authz = _kept(old, AUTHZ_START, AUTHZ_END)
    browser = _kept(old, BROWSER_START, BROWSER_END)
    recorded = _kept(old, RECORDING_START, RECORDING_END)
    district = _kept(old, DISTRICT_START, DISTRICT_END)
    parts = [
        "# Benchmarks\n",
        *([district + "\n"] if district else []),
        f"Command: `{meta['command']}` · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {meta['minutes']:.1f} min\n\n"
        f"Machine: {report.machine()} · load average {meta['load_before']} at the start, {meta['load_after']} "
        f"at the end · reference: Node socket.io {report.socketio_version()}\n",
        "Written by `make bench` (see bench/README.md for what each scenario does). Everything runs on "
        "loopback on this machine, servers pinned to core 0 (with their Redis), the load generator (Node, "
        "`socket.io-client`) to core 1 where there are two cores. Figures are medians over "
        f"{rounds} round(s), the range in brackets; servers alternate phase by phase (A B C … then … C B A). "
        "Nothing here is asserted in tests.\n",
    ]
    groups = report.group(out.get("relay", []))
    targets = out.get("targets", [])
    if groups:
        parts += [
            f"## S1 relay hop latency (open loop, {relay.RATE:.0f} msg/s in all)\n",
            "One `rtc:signal` ICE candidate from one call peer to the other, latency from its *scheduled* send "
            "time to its arrival (no coordinated omission). ×2: the two peers are on different instances.\n",
            report.s1_table(groups, targets, N1),
            "## S2 relayed messages per server CPU-second (closed loop, 100 rooms)\n",
            "Each room sends its next signal on the previous one's ack. Server CPU from /proc/<pid>/stat "
            "(utime + stime) of the server processes; '… with its Redis' adds the Redis server's CPU.\n",
            report.s2_table(groups, targets, N1),
            "## S6 two instances against one\n",
            _s6(groups),
        ]
    if out.get("memory"):
        parts += [
            "## S3 memory per idle connection and connect rate\n",
            "A fresh server each time; connections added in steps, 50 connecting at once; RSS read 2 s after "
            "each step. A telerounds connection is a real one: a token, an account, presence and `session:state`.\n",
            report.s3_table(out["memory"], N1),
        ]
    if "s4" in out:
        s4 = out["s4"]
        parts += [
            "## S4 request → offer\n",
            "A clinician on instance A requests a surgery consult; one of 50 available surgeons on instance B "
            "gets `consult:offer`. From just before the request to the offer's arrival; open loop.\n",
            "| requests | rate | p50 | p99 | max |\n| --- | --- | --- | --- | --- |\n"
            f"| {s4['requests']} | {s4['rate_per_s']:.0f}/s | {s4['p50_ms']:.1f} ms | **{s4['p99_ms']:.1f} ms** "
            f"| {s4['max_ms']:.1f} ms |\n",
        ]
    if "s5" in out:
        s5 = out["s5"]
        parts += [
            "## S5 offer → connected (aiortc ↔ aiortc through two instances)\n",
            "From `createOffer` to the offerer's `connectionState == connected`; host candidates only.\n",
            "| calls | p50 | min | max |\n| --- | --- | --- | --- |\n"
            f"| {s5['calls']} | {s5['p50_ms']:.0f} ms | {s5['min_ms']:.0f} ms | {s5['max_ms']:.0f} ms |\n",
        ]
    if with_steps and groups:
        parts += [
            "## Optimization steps (issue 9)\n",
            "Each row is telerounds with the later steps taken back (bench/variants.py); each series is "
            "measured in a session of its own (its servers alternating phase by phase), in the same run as "
            "everything above.\n",
            report.steps_table(
                groups,
                [[(n, w) for n, _, w in STEPS_1], [(n, w) for n, _, w in STEPS_2]],
            ),
        ]
    if gains_section:
        parts.append(gains_section + "\n")
    if authz:
        parts.append(authz + "\n")
    if looplag:
        parts.append(looplag + "\n")
    if soak_section:
        parts.append(soak_section + "\n")
    if flood_section:
        parts.append(flood_section + "\n")
    if browser:
        parts.append(browser + "\n")
    if recorded:
        parts.append(recorded + "\n")
    return "\n".join(parts)


def _s6(groups: dict[tuple[str, int, str], list[dict[str, Any]]]) -> str:
    rows = [
        "| server | p99 at 100 rooms, ×1 → ×2 | msg/s ×1 → ×2 | msg per server CPU-s ×1 → ×2 |",
        "| --- | --- | --- | --- |",
    ]

    def pair(one: str, two: str, phase: str, key: str, digits: int) -> str:
        a = report.median_of(groups.get((phase, 100, one), []), key)
        b = report.median_of(groups.get((phase, 100, two), []), key)
        if a is None or b is None:
            return "–"
        return f"{a:.{digits}f} → {b:.{digits}f} ({report.ratio(b, a)})"

    for name, one, two in (("telerounds", T1, T2), ("Node socket.io + redis-adapter", N1, N2)):
        rows.append(
            f"| {name} | {pair(one, two, 'S1', 'p99', 2)} ms | {pair(one, two, 'S2', 'per_s', 0)} "
            f"| {pair(one, two, 'S2', 'per_server_cpu_s', 0)} |"
        )
    return (
        "\n".join(rows)
        + "\n\nBoth instances share core 0 with their Redis, so ×2 shows the cost of crossing instances, "
        "not more capacity.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
