"""Calls between two Chromium pages (two instances) through coturn on loopback, relay-only.

The selected candidate pair, read from `getStats`, is a relay over UDP and over TCP; a call that
runs past its TURN credentials' expiry (`TURN_TTL_S=10`) renews them and restarts ICE on the same
connections: the picture keeps flowing and no new offer (new DTLS session) was needed.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import StartInstance
from tests.system.browsing import in_a_call, signed_in
from tests.system.turn import TurnServer

# Time limits a user feels (a call within seconds, a recording in real time): run on CPU not
# shared with another test (`make test` runs these after the rest, in one process).
pytestmark = pytest.mark.alone

# Every RTCPeerConnection the page makes, so the test can read its statistics.
WATCH_CONNECTIONS = """(() => {
  const Original = window.RTCPeerConnection;
  window.__connections = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__connections.push(this); }
  };
})()"""

# The candidate pair the live connection's transport selected: its local and remote types,
# the local candidate's relay protocol, and what has come in so far.
SELECTED_PAIR = """async () => {
  const pc = window.__connections.filter((c) => c.connectionState === "connected").at(-1);
  if (!pc) return null;
  const stats = [...(await pc.getStats()).values()];
  const byId = new Map(stats.map((s) => [s.id, s]));
  const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  if (!transport) return null;
  const pair = byId.get(transport.selectedCandidatePairId);
  const local = byId.get(pair.localCandidateId), remote = byId.get(pair.remoteCandidateId);
  const video = stats.find((s) => s.type === "inbound-rtp" && s.kind === "video");
  return {
    local: local.candidateType, remote: remote.candidateType, relayProtocol: local.relayProtocol,
    url: local.url, framesDecoded: video ? video.framesDecoded : 0,
    connections: window.__connections.length,
  };
}"""


async def consult_call(
    start_instance: StartInstance, browser: Browser, district: dict[str, str] | None = None, **env: str
) -> tuple[Page, Page]:
    """A clinician at Ba Vì and a specialist at Xanh Pôn in one consult's call, each through their
    own instance, both with the ICE settings `env` (the clinician's with `district` if given)."""
    a = await start_instance(**(district or env))
    b = await start_instance(**env)
    clinician = await signed_in(browser, a, "bavi.clinician")
    specialist = await signed_in(browser, b, "xanhpon.surgeon")
    for page in (clinician, specialist):
        await page.add_init_script(WATCH_CONNECTIONS)
        await page.reload()
        await page.wait_for_selector("#logout:not([hidden])")
    await in_a_call(clinician, specialist, "BV-2026-311")
    return clinician, specialist


async def logged_times(page: Page, text: str, times: int, within_ms: float) -> None:
    """Wait until the page has logged `text` `times` times."""
    while sum(text in line for line in page.console) < times:  # type: ignore[attr-defined]
        await page.wait_for_event("console", predicate=lambda m: text in m.text, timeout=within_ms)


async def selected(page: Page, decoded: bool = False) -> dict[str, Any]:
    """The selected pair, once there is one (`decoded`: once video frames were decoded over it;
    the statistics are read as they are at that moment, so a first reading may still count 0)."""
    condition = f"({SELECTED_PAIR})()"
    if decoded:
        condition = f"({SELECTED_PAIR})().then((p) => (p && p.framesDecoded > 0 ? p : null))"
    found = await page.wait_for_function(condition)
    pair: dict[str, Any] = await found.json_value()
    return pair


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_relay_only_call_between_two_browsers_goes_through_turn(
    start_instance: StartInstance, browser: Browser, turn: TurnServer, transport: str
) -> None:
    url = turn.udp_url if transport == "udp" else turn.tcp_url
    clinician, specialist = await consult_call(start_instance, browser, **turn.settings(url))
    for page in (clinician, specialist):
        pair = await selected(page, decoded=True)
        assert pair["local"] == "relay" and pair["remote"] == "relay", pair
        assert pair["relayProtocol"] == transport, pair  # to coturn over the transport asked for
        assert pair["framesDecoded"] > 0


async def test_a_call_outlives_its_turn_credentials_by_restarting_ice(
    start_instance: StartInstance, browser: Browser, tmp_path: Any
) -> None:
    # Allocations refreshed every few seconds, so coturn checks the credentials again and again.
    turn = TurnServer(tmp_path, allocation_lifetime_s=6).start()
    try:
        clinician, specialist = await consult_call(start_instance, browser, **turn.settings(ttl_s=10))
        before = {id(p): (await selected(p))["framesDecoded"] for p in (clinician, specialist)}
        # Renewed at 5 s and again at 10 s: past the first credentials' expiry.
        for page in (clinician, specialist):
            await logged_times(page, "ICE servers renewed", 2, within_ms=30_000)
        for page in (clinician, specialist):
            pair = await selected(page)
            assert pair["local"] == "relay" and pair["connections"] == 1, pair  # the same connection
            await page.wait_for_function(
                f"({SELECTED_PAIR})().then((p) => p && p.framesDecoded > {before[id(page)] + 30})"
            )
        # One offer made the call; each renewal restarted ICE on it instead of a new offer.
        offers = [
            line
            for page in (clinician, specialist)
            for line in page.console  # type: ignore[attr-defined]
            if "received offer" in line and "ICE restart" not in line
        ]
        assert len(offers) == 1, offers
        restarts = [line for page in (clinician, specialist) for line in page.console if "(ICE restart)" in line]  # type: ignore[attr-defined]
        assert restarts
    finally:
        turn.stop()
