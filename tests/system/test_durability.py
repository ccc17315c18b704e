"""What was acknowledged survives a crash: kill -9 the instance right after a note's ack."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from server.runtime.redis_process import free_port
from tests.conftest import PASSWORD, SECRET, Client, login
from tests.system.test_consults import ask
from tests.system.test_notes import add, note

ROOT = Path(__file__).resolve().parent.parent.parent


def start_server(port: int, redis_url: str, database_url: str, var_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PORT": str(port),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "TELEROUNDS_DEMO_PASSWORD": PASSWORD,
        "TELEROUNDS_VAR_DIR": str(var_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not become ready")


async def test_an_acknowledged_note_survives_kill_9(redis_url: str, database_url: str, tmp_path: Path) -> None:
    port = free_port()
    process = start_server(port, redis_url, database_url, tmp_path / "var")
    url = f"http://127.0.0.1:{port}"
    clinician, surgeon = Client(), Client()
    try:
        await clinician.connect(url, await login(url, "bavi.clinician"))
        await surgeon.connect(url, await login(url, "xanhpon.surgeon"))
        await surgeon.next("session:state")
        consult = await ask(clinician)
        await surgeon.next("consult:offer")
        assert (await surgeon.call("consult:accept", {"consult_id": consult["id"]}))["ok"]
        acked = [await add(clinician, note(consult["id"], f"ghi chú {i}")) for i in range(5)]
        os.kill(process.pid, signal.SIGKILL)  # no shutdown, no flush: straight after the last ack
        process.wait()
    finally:
        for client in (clinician, surgeon):
            await asyncio.wait_for(client.sio.eio.disconnect(abort=True), 5)
        if process.poll() is None:
            process.kill()

    port = free_port()
    restarted = start_server(port, redis_url, database_url, tmp_path / "var")
    try:
        url = f"http://127.0.0.1:{port}"
        token = await login(url, "bavi.clinician")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.get(f"{url}/api/consults/{consult['id']}") as resp:
                record = await resp.json()
        assert [(n["seq"], n["text"]) for n in record["notes"]] == [(n["seq"], n["text"]) for n in acked]
        assert record["consult"]["status"] == "active"
    finally:
        restarted.send_signal(signal.SIGINT)
        restarted.wait(timeout=30)
