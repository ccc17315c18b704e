"""Calls over an emulated district link (tests/system/district_link.py) between two Chromium pages.

The clinician at Ba Vì reaches coturn through the link, relay-only, so all their media crosses
it; the specialist at Xanh Pôn reaches coturn directly. The link is cut and restored, capped and
uncapped, and the call is held to what a clinician would see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import StartInstance
from tests.system.district_link import DistrictLink, Weather
from tests.system.test_browser_turn import SELECTED_PAIR, consult_call, selected
from tests.system.turn import TurnServer

# Time limits a user feels (a call within seconds, a recording in real time): run on CPU not
# shared with another test (`make test` runs these after the rest, in one process).
pytestmark = pytest.mark.alone

REMOTE_TILE = '.stage-tiles .tile:not([data-peer="self"])'


@pytest.fixture
async def link(turn: TurnServer) -> AsyncIterator[DistrictLink]:
    district = await DistrictLink(turn.port).start()
    yield district
    district.close()


async def district_call(
    start_instance: StartInstance, browser: Browser, turn: TurnServer, link: DistrictLink
) -> tuple[Page, Page]:
    return await consult_call(
        start_instance, browser, district=turn.settings(link.url()), **turn.settings(turn.udp_url)
    )


def full_offers(*pages: Page) -> list[str]:
    """The offers that made a connection anew (a new DTLS session), as the pages logged them."""
    return [
        line
        for page in pages
        for line in page.console  # type: ignore[attr-defined]
        if "received offer" in line and "ICE restart" not in line
    ]


def left_ms(deadline: float) -> float:
    """Milliseconds from now until `deadline` (loop time), for waits that share one deadline."""
    return max(1.0, (deadline - asyncio.get_running_loop().time()) * 1000)


async def frames_grow(page: Page, by: int = 30) -> None:
    """Wait until the page decodes `by` more frames of the other side's video."""
    now = (await selected(page))["framesDecoded"]
    await page.wait_for_function(f"({SELECTED_PAIR})().then((p) => p && p.framesDecoded > {now + by})")


async def test_a_cut_link_comes_back_by_ice_restart_without_a_reload(
    start_instance: StartInstance, browser: Browser, turn: TurnServer, link: DistrictLink
) -> None:
    clinician, specialist = await district_call(start_instance, browser, turn, link)
    loop = asyncio.get_running_loop()
    cut_at = loop.time()
    link.cut()
    # The other side says so on the tile while the path is being found again.
    await specialist.wait_for_selector(f"{REMOTE_TILE}[data-state=reconnecting]", timeout=8_000)
    await asyncio.sleep(max(0.0, cut_at + 8.0 - loop.time()))  # the link stays down for 8 s
    link.restore()
    for page in (clinician, specialist):
        await page.wait_for_selector(f"{REMOTE_TILE}[data-state=connected]", timeout=30_000)
        await frames_grow(page)
    assert len(full_offers(clinician, specialist)) == 1  # the first; the rest were ICE restarts
    restarts = [line for page in (clinician, specialist) for line in page.console if "(ICE restart)" in line]  # type: ignore[attr-defined]
    assert restarts, "\n".join(line for page in (clinician, specialist) for line in page.console if "call" in line)  # type: ignore[attr-defined]


# Audio that came in so far on the page's live connection.
AUDIO_IN = """async () => {
  const pc = window.__connections.filter((c) => c.connectionState === "connected").at(-1);
  if (!pc) return 0;
  const audio = [...(await pc.getStats()).values()].find((s) => s.type === "inbound-rtp" && s.kind === "audio");
  return audio ? audio.packetsReceived : 0;
}"""

# The district side's link: 150 ms each way, 3 % loss, 400 kbps.
DISTRICT = Weather(delay_s=0.150, jitter_s=0.010, loss=0.03, rate_bps=400_000)


async def test_a_consult_over_a_poor_district_link_carries_audio_both_ways_and_completes(
    start_instance: StartInstance, browser: Browser, turn: TurnServer, link: DistrictLink
) -> None:
    link.set(up=DISTRICT, down=Weather(**{**vars(DISTRICT), "free_at": 0.0}))
    clinician, specialist = await district_call(start_instance, browser, turn, link)
    for page in (clinician, specialist):  # audio flows both ways, and keeps flowing
        now = await page.evaluate(AUDIO_IN)
        await page.wait_for_function(f"({AUDIO_IN})().then((n) => n > {now + 100})")  # 2 s of Opus
    await clinician.select_option("select[name=section]", "examination")
    await clinician.fill("textarea[name=note]", "Mạch 90, HA 120/80")
    await clinician.click(".notes + form button[type=submit]")
    await specialist.wait_for_selector('.note[data-section="examination"]:has-text("Mạch 90")')
    await specialist.click("button.end-consult")
    await specialist.select_option("select[name=outcome]", "treated_locally")
    await specialist.click("form:has(select[name=outcome]) button[type=submit]")
    await clinician.wait_for_selector("text=Chưa có ca nào đang mở")
    assert link.up.passed > 100 and link.up.dropped > 0  # the media did cross the lossy link
    for page in (clinician, specialist):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]


async def test_a_capped_link_goes_audio_first_and_video_comes_back(
    start_instance: StartInstance, browser: Browser, turn: TurnServer, link: DistrictLink
) -> None:
    clinician, specialist = await district_call(start_instance, browser, turn, link)
    loop = asyncio.get_running_loop()
    capped_at = loop.time()
    link.cap(64_000)
    for page in (clinician, specialist):  # both sides say so on the other's tile within 10 s
        await page.wait_for_selector(f"{REMOTE_TILE}[data-link=audio_only] .tile-link", timeout=left_ms(capped_at + 10))
        assert await page.locator(f"{REMOTE_TILE} .tile-link").is_visible()
    for page in (clinician, specialist):  # audio goes on over the capped link
        now = await page.evaluate(AUDIO_IN)
        await page.wait_for_function(f"({AUDIO_IN})().then((n) => n > {now + 50})")
    lifted_at = loop.time()
    link.cap(0)
    for page in (clinician, specialist):  # video comes back by itself within 20 s
        await page.wait_for_selector(f"{REMOTE_TILE}[data-link=ok]", timeout=left_ms(lifted_at + 20))
        await frames_grow(page)
    assert len(full_offers(clinician, specialist)) == 1  # audio first changed no connection
