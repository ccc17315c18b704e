"""`python -m server` — what `make run` does — on an empty var/ directory."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.__main__ import YOUNG_GENERATION, tune_collector
from server.runtime.redis_process import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


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


def _start_refused(env: dict[str, str]) -> str:
    """`python -m server` with `env` must stop at once with exit code 2 and one line, no traceback."""
    full = {**os.environ, "TELEROUNDS_DEMO_DATA": "false", **env}
    for name in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY"):
        if name not in env:
            full.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "server"], cwd=ROOT, env=full, capture_output=True, text=True, timeout=90
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "Exception in thread" not in output, output
    said = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # JSON lines are logs
    assert len(said) == 1 and said[0].startswith("telerounds: cannot start: "), output
    return said[0]


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("DATABASE_URL", {"DATABASE_URL": "sqlite:////no/such/dir/x.db"}),
        ("DATABASE_URL", {"DATABASE_URL": "sqlite:///{tmp}/not-a-database.db"}),
        ("DATABASE_URL", {"DATABASE_URL": "postgresql://telerounds:s3cret-pw@127.0.0.1:{closed}/telerounds"}),
        ("REDIS_URL", {"REDIS_URL": "redis://localhost:port"}),
        ("REDIS_URL", {"REDIS_URL": "redis://:s3cret-pw@127.0.0.1:{closed}/0"}),
        ("TELEROUNDS_VAR_DIR", {"TELEROUNDS_VAR_DIR": "{tmp}/a-file/var"}),
        ("TELEROUNDS_VAR_DIR", {"TELEROUNDS_VAR_DIR": "{tmp}/a-file/var", "SECRET_KEY": "0123456789abcdef-key"}),
        ("PORT", {"PORT": "eighty"}),
        ("PORT", {"PORT": "{taken}"}),
        ("HOST", {"HOST": "no-such-host.invalid"}),
    ],
)
def test_a_bad_setting_stops_the_start_with_one_line_naming_it(tmp_path: Path, name: str, env: dict[str, str]) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "not-a-database.db").write_text("not a database " * 10)
    closed = free_port()  # nothing listens there
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        places = {"tmp": str(tmp_path), "closed": str(closed), "taken": str(taken.getsockname()[1])}
        filled = {key: value.format(**places) for key, value in env.items()}
        # PORT 0: the kernel's choice at the start. A port picked here could be taken by another
        # test before the start checks it, and the start would rightly name PORT instead.
        line = _start_refused({"TELEROUNDS_VAR_DIR": str(tmp_path / "var"), "PORT": "0", **filled})
    assert f"cannot start: {name}" in line, line
    assert "s3cret-pw" not in line  # a password in a URL is not repeated in the message
