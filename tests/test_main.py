"""`python -m server` — what `make run` does — on an empty var/ directory."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from server.__main__ import YOUNG_GENERATION, tune_collector
from server.redis_process import free_port

ROOT = Path(__file__).resolve().parent.parent


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_make_run_starts_a_ready_service_with_its_own_redis_and_demo_logins(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "TELEROUNDS_VAR_DIR": str(tmp_path / "var"),
        "TELEROUNDS_DEMO_PASSWORD": "demo",
    }
    for name in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "server"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status, _ = _get(f"http://127.0.0.1:{port}/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == 200, f"not ready; exit code {process.poll()}"
        children = _child_pids(process.pid)
        assert children, "the embedded redis-server child is running"
        assert (tmp_path / "var" / "telerounds.db").exists()
        assert (tmp_path / "var" / "secret_key").exists()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "bavi.clinician" in output and "xanhpon.surgeon" in output and "soyte.supervisor" in output
    assert f"http://127.0.0.1:{port}" in output
    assert process.returncode == 0, output
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_a_bad_setting_stops_the_start_with_its_name(tmp_path: Path) -> None:
    env = {**os.environ, "PORT": "eighty", "TELEROUNDS_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "server"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "PORT" in result.stderr


def test_the_collector_keeps_startup_out_and_collects_young_objects_less_often() -> None:
    threshold = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_GENERATION, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
