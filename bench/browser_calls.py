"""Calls in the browser app, timed as its users feel them (issue 20): Chromium through Playwright
with fake camera and microphone, a clinician at Ba Vì on instance A and a specialist at Xanh Pôn
on instance B, over loopback.

python -m bench.browser_calls               20 calls; prints the figures, writes its section of docs/benchmarks.md
python -m bench.browser_calls --calls 5     fewer calls
python -m bench.browser_calls --no-write    print only
(also `make bench BENCH_ARGS=--browser-calls`)

For each call:
- accept → video: from the specialist's click on Accept in the offer dialog (the moment the click
  reaches the page) to a remote video playing on both pages. It includes both pre-join screens
  (the specialist's opens on Accept, the clinician's from Join on the request's card): each opens
  the camera and microphone (getUserMedia) before its Join may be clicked, and is clicked as soon
  as it may, as the tests do;
- network back → video: the clinician's instance is stopped (SIGTERM) for DOWN_S seconds, which
  drops the clinician's connection as a lost network does, and started again on the same address;
  from the moment it answers /readyz again to a remote video playing on both pages over a new
  connection (the page's reconnect back-off included).

Playwright's `context.set_offline(True)` is not used for the drop: Chromium's offline emulation
covers HTTP and not the WebRTC media over loopback, and the open WebSocket would only notice
after Socket.IO's ping timeout, so it would time the ping timeout rather than the recovery.

Timestamps are taken in the pages (Date.now(), polled every POLL_MS) and in this process on the
same clock. Printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from bench import report
from bench.cluster import PASSWORD, Cluster
from bench.request_offer import percentile
from tests.system.browsing import CHROMIUM_ARGS

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- browser-calls -->", "<!-- /browser-calls -->"

# Today's pages, in one place: when the screens are redrawn, change these.
UI = {
    "username": "input[name=username]",
    "password": "input[name=password]",
    "sign_in": "button[type=submit]",
    "signed_in": "#logout:not([hidden])",
    "request_ref": "input[name=ref]",
    "request_submit": "form button[type=submit]",
    "request_sent": ".card [data-status]",
    "offer_accept": "dialog.offer-dialog[open] button.accept",  # the offer dialog, over any screen
    "consult_join": ".card button.join",
    "prejoin_join": "button.prejoin-join",  # enabled once the camera and microphone are open
    "remote_tiles": '.tile:not([data-peer="self"])',
    "tile_video": "video",
    "end_open": "button.end-consult",  # the specialist's End opens a dialog that confirms
    "outcome": "select[name=outcome]",
    "end_consult": "form:has(select[name=outcome]) button[type=submit]",
    "clinician_home": "input[name=ref]",
    "specialist_home": "select[name=presence]",
}
DOWN_S = 3.0
POLL_MS = 10
TIMEOUT_MS = 30_000

# A remote tile (one not marked as from before the drop) whose video has frames: the time it was seen.
PLAYING = f"""() => [...document.querySelectorAll('{UI["remote_tiles"]}:not([data-old]) {UI["tile_video"]}')]
    .some(v => v.videoWidth > 0 && v.readyState >= 2) && Date.now()"""
# The moment the click on Accept reaches the page (Date.now(), kept in the page). Taken there, not
# before Playwright's click: Playwright first waits for the button to stand still, and the offer
# card knocks (shakes) for its first 2.4 s, which a person's click does not wait for.
WATCH_ACCEPT = f"""() => {{ window.acceptClickedAt = null; document.addEventListener('click', e => {{
    if (e.target.closest('{UI["offer_accept"]}')) window.acceptClickedAt ??= Date.now(); }}, true); }}"""
MARK_OLD = f"""() => document.querySelectorAll('{UI["remote_tiles"]}').forEach(t => t.dataset.old = '1')"""


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SystemExit("needs Chromium: scripts/ensure-chromium installs it")
    return path


async def sign_in(browser: Browser, url: str, username: str) -> Page:
    context = await browser.new_context(permissions=["camera", "microphone"])
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    await page.fill(UI["username"], username)
    await page.fill(UI["password"], PASSWORD)
    await page.click(UI["sign_in"])
    await page.wait_for_selector(UI["signed_in"])
    return page


async def playing_at(page: Page) -> float:
    """Date.now() in the page when a new remote video is first seen playing there."""
    handle = await page.wait_for_function(PLAYING, polling=POLL_MS, timeout=TIMEOUT_MS)
    return float(await handle.json_value())


async def both_playing_after(clinician: Page, specialist: Page, since_ms: float) -> float:
    seen = await asyncio.gather(playing_at(clinician), playing_at(specialist))
    return max(seen) - since_ms


async def join_from_card(clinician: Page) -> None:
    await clinician.click(UI["consult_join"])
    await clinician.click(UI["prejoin_join"])


async def one_call(cluster: Cluster, clinician: Page, specialist: Page, n: int) -> tuple[float, float]:
    await clinician.fill(UI["request_ref"], f"BENCH-{n:03d}")
    await clinician.click(UI["request_submit"])
    await clinician.wait_for_selector(UI["request_sent"])
    accept = await specialist.wait_for_selector(UI["offer_accept"])
    assert accept is not None
    await specialist.evaluate(WATCH_ACCEPT)
    await accept.click()
    clicked = float(await specialist.evaluate("() => window.acceptClickedAt"))
    # Both go through the pre-join screen (their devices opened there), and Join as soon as it may.
    await asyncio.gather(
        specialist.click(UI["prejoin_join"]),
        join_from_card(clinician),
    )
    connect_ms = await both_playing_after(clinician, specialist, clicked)

    for page in (clinician, specialist):
        await page.evaluate(MARK_OLD)
    await asyncio.to_thread(cluster.stop_instance, 0)
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(cluster.start_instance, 0)  # returns when /readyz answers
    back = time.time() * 1000
    recover_ms = await both_playing_after(clinician, specialist, back)

    await specialist.click(UI["end_open"])
    await specialist.select_option(UI["outcome"], "treated_locally")
    await specialist.click(UI["end_consult"])
    await specialist.wait_for_selector(UI["specialist_home"])
    await clinician.wait_for_selector(UI["clinician_home"])
    return connect_ms, recover_ms


async def measure(calls: int) -> dict[str, Any]:
    cluster = Cluster(instances=2)
    await asyncio.to_thread(cluster.start)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            clinician = await sign_in(browser, cluster.urls[0], "bavi.clinician")
            specialist = await sign_in(browser, cluster.urls[1], "xanhpon.surgeon")
            await specialist.wait_for_selector(UI["specialist_home"])
            connect: list[float] = []
            recover: list[float] = []
            for n in range(1, calls + 1):
                c, r = await one_call(cluster, clinician, specialist, n)
                connect.append(c)
                recover.append(r)
                print(f"  call {n:2}: accept → video {c:6.0f} ms   network back → video {r:6.0f} ms", flush=True)
            await browser.close()
    finally:
        await asyncio.to_thread(cluster.stop)
    return {"calls": calls, "connect": figures(connect), "recover": figures(recover)}


def figures(ms: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(ms),
        "p95": percentile(ms, 95),
        "min": min(ms),
        "max": max(ms),
    }


def chromium_version() -> str:
    try:
        out = subprocess.run([chromium_path(), "--version"], capture_output=True, text=True, timeout=20).stdout
        return out.strip() or "Chromium"
    except (OSError, subprocess.SubprocessError):
        return "Chromium"


def section(result: dict[str, Any], command: str, load: str) -> str:
    def row(name: str, f: dict[str, float]) -> str:
        return (
            f"| {name} | {result['calls']} | {f['p50']:.0f} ms | **{f['p95']:.0f} ms** "
            f"| {f['min']:.0f} ms | {f['max']:.0f} ms |"
        )

    return (
        f"{START}\n## Calls in the browser app (Chromium)\n\n"
        f"Command: `{command}` · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · load average {load} at the start\n\n"
        f"Machine: {report.machine()} · {chromium_version()} (headless, fake camera and microphone)\n\n"
        "Two telerounds instances on one Redis, a clinician at Ba Vì signed in on one and a specialist at "
        "Xanh Pôn on the other, each in their own Chromium page, over loopback (bench/browser_calls.py). "
        "**Accept → video**: from the specialist's click on Accept in the offer dialog (timed when the click "
        "reaches the page) to a remote video playing on both pages. It includes both pre-join screens: each "
        "opens the camera and microphone before its Join may be clicked (the clinician first clicks Join on the "
        "request's card), and each Join is clicked as soon as it may. **Network back → video**: "
        "the clinician's instance "
        f"is stopped for {DOWN_S:g} s (their connection drops, as with a lost network) and started again on "
        "its address; from its first answer to `/readyz` to a remote video playing on both pages over a new "
        "connection, the page's reconnect back-off included. Printed, not asserted.\n\n"
        "| measure | calls | p50 | p95 | min | max |\n| --- | --- | --- | --- | --- | --- |\n"
        f"{row('accept → remote video on both sides', result['connect'])}\n"
        f"{row('clinician network back → remote video again', result['recover'])}\n"
        f"{END}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser_calls")
    parser.add_argument("--calls", type=int, default=20, help="calls to time (default 20)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    # Stopped with SIGTERM: unwind, so both instances and Redis are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load = report.loadavg()
    print(f"browser calls: {args.calls} calls in Chromium across two instances; load average {load}", flush=True)
    result = asyncio.run(measure(args.calls))
    for name, key in (("accept → video", "connect"), ("network back → video", "recover")):
        f = result[key]
        print(f"  {name:22} p50 {f['p50']:6.0f} ms  p95 {f['p95']:6.0f} ms  (min {f['min']:.0f}, max {f['max']:.0f})")
    if not args.no_write:
        command = report.command_line("bench.browser_calls", argv)
        report.write_section(DOC, START, END, section(result, command, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
