"""Turning the load generator's lines into medians, ranges, ratios and docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.servers import REFERENCE


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, Node {_node()}, {platform.system()}"


def _node() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    except FileNotFoundError:
        return "none"


def socketio_version() -> str:
    try:
        import json

        return str(json.loads((REFERENCE / "node_modules/socket.io/package.json").read_text())["version"])
    except OSError:
        return "?"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def spread(values: list[float]) -> tuple[float, float, float]:
    """Median, lowest, highest."""
    return statistics.median(values), min(values), max(values)


def fmt(values: list[float], digits: int = 1, unit: str = "") -> str:
    """`median (low–high)`, or just the value when there was one round."""
    if not values:
        return "–"
    mid, low, high = spread(values)
    if len(values) == 1 or low == high:
        return f"{mid:.{digits}f}{unit}"
    return f"{mid:.{digits}f}{unit} ({low:.{digits}f}–{high:.{digits}f})"


def group(results: list[dict[str, Any]]) -> dict[tuple[str, int, str], list[dict[str, Any]]]:
    """Results by (phase, rooms, target), one entry per round."""
    out: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in results:
        if r.get("type") == "result":
            out.setdefault((r["phase"], r["rooms"], r["target"]), []).append(r)
    return out


def median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


# ---- markdown -----------------------------------------------------------------------------------


def s1_table(groups: dict[tuple[str, int, str], list[dict[str, Any]]], targets: list[str], reference: str) -> str:
    counts = sorted({rooms for (phase, rooms, _) in groups if phase == "S1"})
    head = "| server | " + " | ".join(f"{n} rooms: p50 / p95 / p99 ms" for n in counts) + " | p99 vs Node |\n"
    head += "| --- |" + " --- |" * (len(counts) + 1) + "\n"
    rows = []
    for target in targets:
        cells = []
        for n in counts:
            got = groups.get(("S1", n, target), [])
            if not got:
                cells.append("–")
                continue
            p50 = fmt([r["p50"] for r in got if r["p50"] is not None], 2)
            p95 = fmt([r["p95"] for r in got if r["p95"] is not None], 2)
            p99 = fmt([r["p99"] for r in got if r["p99"] is not None], 2)
            lost = sum(r["lost"] + r["errors"] for r in got)
            cells.append(f"{p50} / {p95} / **{p99}**" + (f" ⚠ {lost} lost/errors" if lost else ""))
        top = max(counts)
        ratio_cell = ratio(
            median_of(groups.get(("S1", top, target), []), "p99"),
            median_of(groups.get(("S1", top, reference), []), "p99"),
        )
        rows.append(f"| {target} | " + " | ".join(cells) + f" | {ratio_cell} at {top} |")
    return head + "\n".join(rows) + "\n"


def s2_table(groups: dict[tuple[str, int, str], list[dict[str, Any]]], targets: list[str], reference: str) -> str:
    head = (
        "| server | msg/s | msg per server CPU-s | … with its Redis | vs Node | server CPU | load generator CPU |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
    )
    ref = median_of(groups.get(("S2", 100, reference), []), "per_server_cpu_s")
    rows = []
    for target in targets:
        got = groups.get(("S2", 100, target), [])
        if not got:
            continue
        per_cpu = [r["per_server_cpu_s"] for r in got if r["per_server_cpu_s"]]
        with_redis = [r["per_cpu_s_with_redis"] for r in got if r["per_cpu_s_with_redis"] and r["redis_cpu_s"] > 0]
        errors = sum(r["errors"] for r in got)
        rows.append(
            f"| {target} | {fmt([r['per_s'] for r in got], 0)} | **{fmt(per_cpu, 0)}** | "
            f"{fmt(with_redis, 0) if with_redis else '–'} | {ratio(median_of(got, 'per_server_cpu_s'), ref)} | "
            f"{fmt([r['server_cpu_pct'] for r in got], 0, ' %')} | {fmt([r['loadgen_cpu_pct'] for r in got], 0, ' %')}"
            + (f" ⚠ {errors} errors" if errors else "")
            + " |"
        )
    return head + "\n".join(rows) + "\n"


def s3_table(memory: list[dict[str, Any]], reference: str) -> str:
    by_server: dict[str, list[dict[str, Any]]] = {}
    for run in memory:
        by_server.setdefault(run["server"], []).append(run)
    counts = sorted({p["connections"] for run in memory for p in run["points"]})
    head = (
        "| server | "
        + " | ".join(f"KB per idle connection at {n}" for n in counts)
        + " | connects/s | KB vs Node | RSS at most |\n"
        + "| --- |"
        + " --- |" * (len(counts) + 3)
        + "\n"
    )

    def per(server: str, n: int) -> list[float]:
        return [p["kb_per_connection"] for run in by_server[server] for p in run["points"] if p["connections"] == n]

    rows = []
    for server, runs in by_server.items():
        cells = [fmt(per(server, n), 1) for n in counts]
        rates = [p["connect_per_s"] for run in runs for p in run["points"]]
        top = max(counts)
        mine, ref = per(server, top), per(reference, top) if reference in by_server else []
        most = max(p["rss_mb"] for run in runs for p in run["points"])
        rows.append(
            f"| {server} | "
            + " | ".join(cells)
            + f" | {fmt(rates, 0)} | {ratio(_median(mine), _median(ref))}"
            + f" | {most:.0f} MB |"
        )
    return head + "\n".join(rows) + "\n"


def steps_table(groups: dict[tuple[str, int, str], list[dict[str, Any]]], series: list[list[tuple[str, str]]]) -> str:
    """One row per step; each series (one instance, two instances) compares a step with the one before."""
    head = (
        "| step | S1 100 rooms p50 / p99 ms | S2 msg/s | S2 msg per server CPU-s | … with its Redis "
        "| CPU-s gain vs the row above |\n| --- | --- | --- | --- | --- | --- |\n"
    )
    rows = []
    for steps in series:
        previous = None
        for name, what in steps:
            s1, s2 = groups.get(("S1", 100, name), []), groups.get(("S2", 100, name), [])
            if not s1 and not s2:
                continue
            per_cpu = median_of(s2, "per_server_cpu_s")
            rows.append(
                f"| {what} | {fmt([r['p50'] for r in s1 if r['p50'] is not None], 2)} / "
                f"{fmt([r['p99'] for r in s1 if r['p99'] is not None], 2)} | {fmt([r['per_s'] for r in s2], 0)} | "
                f"{fmt([r['per_server_cpu_s'] for r in s2 if r['per_server_cpu_s']], 0)} | "
                f"{fmt([r['per_cpu_s_with_redis'] for r in s2 if r['per_cpu_s_with_redis']], 0)} | "
                f"{ratio(per_cpu, previous) if previous else '–'} |"
            )
            previous = per_cpu
    return head + "\n".join(rows) + "\n"


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that made a section, as written above its figures."""
    extra = " ".join(argv if argv is not None else sys.argv[1:])
    return f"python -m {module}" + (f" {extra}" if extra else "")


def write_section(doc: Path, start: str, end: str, new: str, *, at_top: bool = False) -> None:
    """Put one bench's section into docs/benchmarks.md: in place of its earlier figures (between
    its markers), else after the title (`at_top`) or at the end."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: new, text, flags=re.S)
    elif at_top:
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{new}\n{rest}"
    else:
        text = text.rstrip() + "\n\n" + new + "\n"
    doc.write_text(text)
    print(f"wrote {doc}")
