"""Running the Node load generator (bench/reference/loadgen.js) and installing its packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.servers import LOADGEN_CPUS, REFERENCE


def ensure_node_packages() -> None:
    """`npm ci` in bench/reference when its node_modules are missing or older than the lock file."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("the bench needs Node 18+ and npm (for the reference relay and the load generator)")
    modules, lock = REFERENCE / "node_modules", REFERENCE / "package-lock.json"
    if modules.exists() and modules.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("installing the Node packages of bench/reference (npm ci)", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REFERENCE, check=True)
    modules.touch()


def run(plan: dict[str, Any], on_line: Any = None) -> list[dict[str, Any]]:
    """Run one plan; returns the `result` and `rss` lines, prints progress, raises on an error line."""
    plan = {"clk_tck": os.sysconf("SC_CLK_TCK"), **plan}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan, f)
    command = ["node", str(REFERENCE / "loadgen.js"), f.name]
    if LOADGEN_CPUS is not None and shutil.which("taskset"):
        command = ["taskset", "-c", LOADGEN_CPUS, *command]
    lines: list[dict[str, Any]] = []
    errors: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = json.loads(raw)
            if line["type"] == "error":
                errors.append(line["message"])
            elif line["type"] == "progress":
                print(f"  {line['message']}", flush=True)
            else:
                lines.append(line)
                if on_line is not None:
                    on_line(line)
    Path(f.name).unlink(missing_ok=True)
    if errors or process.returncode != 0:
        raise RuntimeError("load generator failed: " + ("\n".join(errors) or f"exit code {process.returncode}"))
    return lines
