"""Calls over a district link, timed as their users feel them (issue 23): Chromium through
Playwright, a clinician at Ba Vì on instance A and a specialist at Xanh Pôn on instance B,
relay-only through Debian's coturn on loopback.

python -m bench.district_calls                 20 calls per path, 10 cuts; writes its section of docs/benchmarks.md
python -m bench.district_calls --calls 5 --cuts 3 --minute 20 --no-write

Two paths: **TURN on loopback** (both pages reach coturn directly) and **district link**: the
clinician's page reaches coturn through tests/system/district_link.py, 150 ms each way, ±10 ms
jitter, 3 % loss and 400 kbps each way; the specialist's directly.
- accept → video: from the specialist's click on Accept to a remote video playing on both pages
  (both pre-join screens included), over `--calls` calls per path;
- audio lost and concealed per minute: in one call over the district link, the inbound audio's
  `packetsLost` and `concealmentEvents` on each page over `--minute` seconds, scaled to a minute;
- link restored → video: the district link is cut for 8 s and restored, `--cuts` times in one
  call; from the restore to new video frames decoded on both pages (ICE restart, no reload), and
  how often audio first stopped video meanwhile (it printed each change of its mode).
Printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bench import report
from bench.browser_calls import (
    DOC,
    UI,
    both_playing_after,
    chromium_path,
    chromium_version,
    figures,
    join_from_card,
    sign_in,
)
from bench.cluster import Cluster
from tests.system.browsing import CHROMIUM_ARGS, give_consent
from tests.system.district_link import DistrictLink, Weather
from tests.system.test_browser_turn import WATCH_CONNECTIONS
from tests.system.turn import TurnServer

START, END = "<!-- district-calls -->", "<!-- /district-calls -->"
CUT_S = 8.0
POLL_MS = 20
DISTRICT = {"delay_s": 0.150, "jitter_s": 0.010, "loss": 0.03, "rate_bps": 400_000}

# What has come in so far on the page's live connection: video frames decoded, audio packets lost
# and concealment events (Date.now() too, to time it on the same clock as this process).
INBOUND = """async () => {
  const pc = window.__connections.filter((c) => c.connectionState !== "closed").at(-1);
  const out = { at: Date.now(), frames: 0, audioLost: 0, concealed: 0, audioPackets: 0 };
  if (!pc) return out;
  for (const s of (await pc.getStats()).values()) {
    if (s.type !== "inbound-rtp") continue;
    if (s.kind === "video") out.frames += s.framesDecoded || 0;
    if (s.kind === "audio") {
      out.audioLost += s.packetsLost || 0;
      out.concealed += s.concealmentEvents || 0;
      out.audioPackets += s.packetsReceived || 0;
    }
  }
  return out;
}"""


async def inbound(page: Page) -> dict[str, float]:
    got: dict[str, float] = await page.evaluate(INBOUND)
    return got


async def frames_after(page: Page, frames: float) -> float:
    """Date.now() in the page when it has decoded more than `frames` frames of remote video
    (polled every POLL_MS, bounded by a minute)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = await inbound(page)
        if now["frames"] > frames + 5:
            return now["at"]
        await asyncio.sleep(POLL_MS / 1000)
    raise TimeoutError(
        "no video within a minute of the link coming back; the page logged:\n" + "\n".join(page.logged[-30:])  # type: ignore[attr-defined]
    )


async def signed_in_watched(browser: Browser, url: str, username: str) -> Page:
    page = await sign_in(browser, url, username)
    logged: list[str] = []  # what the call logged, to say why when video does not come back
    page.on("console", lambda m: logged.append(m.text) if "candidate" not in m.text else None)
    page.logged = logged  # type: ignore[attr-defined]
    await page.add_init_script(WATCH_CONNECTIONS)
    await page.reload()
    await page.wait_for_selector(UI["signed_in"])
    return page


async def open_call(clinician: Page, specialist: Page, n: int) -> float:
    """A request accepted and joined from both pages; ms from Accept to video on both."""
    await clinician.fill(UI["request_ref"], f"DIST-{n:03d}")
    await give_consent(clinician)
    await clinician.click(UI["request_submit"])
    await clinician.wait_for_selector(UI["request_sent"])
    accept = await specialist.wait_for_selector(UI["offer_accept"])
    assert accept is not None
    await specialist.evaluate(
        "() => { window.acceptClickedAt = null; document.addEventListener('click', "
        f"e => {{ if (e.target.closest('{UI['offer_accept']}')) "
        "window.acceptClickedAt ??= Date.now(); }, true); }"
    )
    await accept.click()
    clicked = float(await specialist.evaluate("() => window.acceptClickedAt"))
    await asyncio.gather(specialist.click(UI["prejoin_join"]), join_from_card(clinician))
    return await both_playing_after(clinician, specialist, clicked)


async def end_call(clinician: Page, specialist: Page) -> None:
    await specialist.click(UI["end_open"])
    await specialist.select_option(UI["outcome"], "treated_locally")
    await specialist.click(UI["end_consult"])
    await specialist.wait_for_selector(UI["specialist_home"])
    await clinician.wait_for_selector(UI["clinician_home"])


async def on_path(district: bool, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    turn = TurnServer(workdir).start()
    link = await DistrictLink(turn.port, up=Weather(**DISTRICT), down=Weather(**DISTRICT)).start()
    direct = turn.settings(turn.udp_url)
    clinician_env = turn.settings(link.url()) if district else direct
    cluster = Cluster(instances=2, instance_env=[clinician_env, direct])
    result: dict[str, Any] = {}
    try:
        await asyncio.to_thread(cluster.start)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            clinician = await signed_in_watched(browser, cluster.urls[0], "bavi.clinician")
            specialist = await signed_in_watched(browser, cluster.urls[1], "xanhpon.surgeon")
            await specialist.wait_for_selector(UI["specialist_home"])
            name = "district link" if district else "TURN on loopback"
            connect: list[float] = []
            for n in range(1, args.calls + 1):
                try:
                    connect.append(await open_call(clinician, specialist, n))
                except PlaywrightTimeout:  # counted and told; the next call is timed
                    result["no_video"] = result.get("no_video", 0) + 1
                    print(f"  {name}: call {n:2}: no video on both pages within 30 s; the pages logged:", flush=True)
                    for page in (clinician, specialist):
                        print("    " + "\n    ".join(page.logged[-25:]), flush=True)  # type: ignore[attr-defined]
                    await end_call(clinician, specialist)
                    continue
                print(f"  {name}: call {n:2}: accept → video {connect[-1]:6.0f} ms", flush=True)
                if not (district and n == args.calls):
                    await end_call(clinician, specialist)
            result["connect"] = figures(connect or [float("nan")])
            result["calls"] = len(connect)
            if district:  # the last call stays open: audio over a minute, then the cuts
                before = [await inbound(p) for p in (clinician, specialist)]
                await asyncio.sleep(args.minute)
                after = [await inbound(p) for p in (clinician, specialist)]
                scale = 60.0 / args.minute
                result["audio"] = [
                    {
                        "lost": (b["audioLost"] - a["audioLost"]) * scale,
                        "concealed": (b["concealed"] - a["concealed"]) * scale,
                        "received": (b["audioPackets"] - a["audioPackets"]) * scale,
                    }
                    for a, b in zip(before, after, strict=True)
                ]
                restored: list[float] = []
                for n in range(1, args.cuts + 1):
                    link.cut()
                    await asyncio.sleep(CUT_S)
                    counts = [(await inbound(p))["frames"] for p in (clinician, specialist)]
                    link.restore()
                    back = time.time() * 1000
                    marks = [len(p.logged) for p in (clinician, specialist)]  # type: ignore[attr-defined]
                    try:
                        seen = await asyncio.gather(
                            *(frames_after(p, c) for p, c in zip((clinician, specialist), counts, strict=True))
                        )
                    except TimeoutError as error:  # counted and told, and the next cut is timed
                        result["not_back"] = result.get("not_back", 0) + 1
                        print(f"  cut {n:2}: {error}", flush=True)
                        continue
                    finally:  # how audio first judged each side's link after this restore
                        for page, mark in zip((clinician, specialist), marks, strict=True):
                            for line in page.logged[mark:]:  # type: ignore[attr-defined]
                                if ": link " in line:
                                    print(f"    {line}", flush=True)
                                if ": link audio_only " in line:
                                    result["audio_only"] = result.get("audio_only", 0) + 1
                    restored.append(max(seen) - back)
                    print(f"  cut {n:2}: link restored → video {restored[-1]:6.0f} ms", flush=True)
                    await asyncio.sleep(3)  # settle before the next cut
                result["restored"] = figures(restored or [float("nan")])
                result["restored_ms"] = restored
                await end_call(clinician, specialist)
            await browser.close()
    finally:
        link.close()
        turn.stop()
        await asyncio.to_thread(cluster.stop)
    return result


def section(loopback: dict[str, Any], district: dict[str, Any], args: argparse.Namespace, command: str) -> str:
    def row(name: str, f: dict[str, float], n: int) -> str:
        return f"| {name} | {n} | {f['p50']:.0f} ms | **{f['p95']:.0f} ms** | {f['min']:.0f} ms | {f['max']:.0f} ms |"

    audio = "\n".join(
        f"| {who} | {a['received']:.0f} | {a['lost']:.0f} | {a['concealed']:.0f} |"
        for who, a in zip(
            ("clinician at Ba Vì (hears Xanh Pôn)", "specialist at Xanh Pôn (hears Ba Vì)"),
            district["audio"],
            strict=True,
        )
    )
    return (
        f"{START}\n## Calls over a district link (Chromium, TURN)\n\n"
        f"Command: `{command}` · {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC · load average "
        f"{args.load} at the start\n\n"
        f"Machine: {report.machine()} · {chromium_version()} (headless, fake camera and microphone) · "
        "coturn 4.6 (Debian) on loopback\n\n"
        "Two telerounds instances (`ICE_TRANSPORT_POLICY=relay`), a clinician at Ba Vì on one and a specialist "
        "at Xanh Pôn on the other, each in their own Chromium page; every call goes through coturn "
        "(bench/district_calls.py). **TURN on loopback**: both pages reach coturn directly. **District link**: "
        "the clinician's page reaches coturn through the user-space link of tests/system/district_link.py, "
        "150 ms each way, ±10 ms jitter, 3 % loss, 400 kbps each way. **Accept → video**: from the specialist's "
        "click on Accept to a remote video playing on both pages, both pre-join screens included. **Link "
        f"restored → video**: the link is cut for {CUT_S:g} s and restored; from the restore to new frames "
        "decoded on both pages (an ICE restart on the same connection, no reload). Printed, not asserted.\n\n"
        "| measure | n | p50 | p95 | min | max |\n| --- | --- | --- | --- | --- | --- |\n"
        f"{row('accept → remote video on both sides, TURN on loopback', loopback['connect'], loopback['calls'])}\n"
        f"{row('accept → remote video on both sides, district link', district['connect'], district['calls'])}\n"
        f"{row('district link restored → video on both sides', district['restored'], len(district['restored_ms']))}\n\n"
        + "".join(
            f"{what}: {r['no_video']} of {args.calls} calls had no video on both pages within 30 s.\n\n"
            for what, r in (("TURN on loopback", loopback), ("District link", district))
            if r.get("no_video")
        )
        + (
            f"Video did not come back within a minute after {district['not_back']} of {args.cuts} cuts.\n\n"
            if district.get("not_back")
            else f"Video came back within a minute after all {args.cuts} cuts.\n\n"
        )
        + "Between each restore and video on both pages, audio first stopped video "
        f"{district.get('audio_only', 0)} times in all.\n\n"
        + f"Audio over the district link, per minute (measured over {args.minute:g} s of one call):\n\n"
        "| page | packets received | packets lost | concealment events |\n| --- | --- | --- | --- |\n"
        f"{audio}\n{END}"
    )


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="telerounds-district-") as tmp:
        loopback = await on_path(False, args, Path(tmp))
        district = await on_path(True, args, Path(tmp))
    return loopback, district


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.district_calls")
    parser.add_argument("--calls", type=int, default=20, help="calls to time per path (default 20)")
    parser.add_argument("--cuts", type=int, default=10, help="link cuts to time (default 10)")
    parser.add_argument("--minute", type=float, default=60.0, help="seconds of audio to count (default 60)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.load = report.loadavg()
    print(f"district calls: {args.calls} calls per path, {args.cuts} cuts; load average {args.load}", flush=True)
    loopback, district = asyncio.run(measure(args))
    for name, f in (
        ("accept → video, TURN on loopback", loopback["connect"]),
        ("accept → video, district link", district["connect"]),
        ("link restored → video", district["restored"]),
    ):
        print(f"  {name:34} p50 {f['p50']:6.0f} ms  p95 {f['p95']:6.0f} ms  (min {f['min']:.0f}, max {f['max']:.0f})")
    for who, a in zip(("clinician", "specialist"), district["audio"], strict=True):
        print(
            f"  audio per minute at the {who}: {a['received']:.0f} received, {a['lost']:.0f} lost, "
            f"{a['concealed']:.0f} concealment events"
        )
    if not args.no_write:
        command = report.command_line("bench.district_calls", argv)
        # At the top: these are the figures users feel.
        report.write_section(DOC, START, END, section(loopback, district, args, command), at_top=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
