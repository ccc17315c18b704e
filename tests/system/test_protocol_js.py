"""The browser's protocol layer (static/protocol.js, static/outbox.js) under Node's own test runner,
against real instances: the tests in tests/js/ drive the vendored socket.io-client over a real
WebSocket to real servers with real Redis and a real database.

The Node side is told where things are through environment variables. It may also ask this side
to stop the instance it is connected to and start it again on the same address, through a small
HTTP control (`POST /stop`, `POST /start`), to prove that a write made while the service is gone
is delivered once it is back.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import urllib.parse
from pathlib import Path

from aiohttp import web

from server.runtime.redis_process import free_port
from tests.conftest import PASSWORD, Instance, StartInstance, login

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = ROOT / "tests" / "js"
# Each Node test waits on its own steps; this bounds the whole run.
RUN_TIMEOUT_S = 300


def node() -> str:
    found = shutil.which("node")
    assert found, (
        "The protocol layer's tests need Node.js 20 or newer (`node` on PATH) for its test runner and "
        "WebSocket; on Debian: apt-get install nodejs"
    )
    return found


async def control(start_instance: StartInstance, first: Instance) -> tuple[web.AppRunner, str]:
    """A tiny HTTP server the Node tests use to stop and start the first instance again."""
    port = int(urllib.parse.urlsplit(first.url).port or 0)
    current: dict[str, Instance | None] = {"instance": first}

    async def stop(_: web.Request) -> web.Response:
        instance = current["instance"]
        if instance is not None:
            await asyncio.wait_for(instance.stop(), 15)
            current["instance"] = None
        return web.json_response({"ok": True})

    async def start(_: web.Request) -> web.Response:
        if current["instance"] is None:
            current["instance"] = await start_instance(port=port)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/stop", stop)
    app.router.add_post("/start", start)
    runner = web.AppRunner(app)
    await runner.setup()
    control_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", control_port).start()
    return runner, f"http://127.0.0.1:{control_port}"


async def test_the_protocol_layer_in_node(start_instance: StartInstance, tmp_path: Path) -> None:
    executable = node()
    first, second = await start_instance(), await start_instance()
    runner, control_url = await control(start_instance, first)
    env = {
        **os.environ,
        "TELEROUNDS_URL": first.url,
        "TELEROUNDS_URL_B": second.url,
        "TELEROUNDS_CONTROL": control_url,
        "TELEROUNDS_PASSWORD": PASSWORD,
        "TELEROUNDS_TOKEN_CLINICIAN": await login(first.url, "bavi.clinician"),
        "TELEROUNDS_TOKEN_SPECIALIST": await login(first.url, "xanhpon.surgeon"),
    }
    # Into a file, not a pipe: what the tests printed is kept if they have to be stopped.
    log = tmp_path / "node-tests.txt"
    try:
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                executable,
                "--experimental-websocket",
                "--no-warnings",
                "--test",
                # One file at a time: they share the demo users (and the specialist's presence).
                "--test-concurrency=1",
                # A failed test may leave a socket open; the run still ends.
                "--test-force-exit",
                *sorted(str(p) for p in JS_TESTS.glob("*.test.mjs")),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                await asyncio.wait_for(process.wait(), RUN_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
                output = log.read_text(errors="replace")
                raise AssertionError("the Node tests did not finish in time:\n" + output) from None
    finally:
        await runner.cleanup()
    text = log.read_text(errors="replace")
    print(text)
    assert process.returncode == 0, "the protocol layer's Node tests failed:\n" + text
