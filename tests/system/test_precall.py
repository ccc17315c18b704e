"""The pre-call check: an aiortc client gets its own camera frames back from the server's peer."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiortc import RTCSessionDescription

from tests.conftest import Instance, StartInstance, login
from tests.system.test_rtc import ColourTrack, peer_connection


async def test_the_echo_peer_returns_the_callers_frames_and_figures(instance: Instance) -> None:
    token = await login(instance.url, "bavi.clinician")
    pc = peer_connection()
    pc.addTrack(ColourTrack((30, 30, 220)))
    channel = pc.createDataChannel("figures")
    figures: asyncio.Queue[str] = asyncio.Queue()
    channel.on("message", figures.put_nowait)
    track_back: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda track: track_back.done() or track_back.set_result(track))
    await pc.setLocalDescription(await pc.createOffer())
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.post(
                f"{instance.url}/api/precall/offer", json={"type": "offer", "sdp": pc.localDescription.sdp}
            ) as resp:
                answer = await resp.json()
                assert resp.status == 200, answer
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
        track = await asyncio.wait_for(track_back, 10)
        frame = await asyncio.wait_for(track.recv(), 10)  # type: ignore[attr-defined]
        red, _green, blue = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
        assert blue > 150 and red < 90  # our own blue frames came back
        report = json.loads(await asyncio.wait_for(figures.get(), 10))
        assert report["connection"] == "connected"
    finally:
        await pc.close()


async def test_precall_needs_a_login_a_valid_offer_and_has_a_limit(start_instance: StartInstance) -> None:
    instance = await start_instance(PRECALL_MAX="0")
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{instance.url}/api/precall/offer", json={"type": "offer", "sdp": "v=0"}) as resp:
            assert resp.status == 401
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for body, status in [
            ({"type": "answer", "sdp": "v=0"}, 400),
            ({"type": "offer", "sdp": "x" * 70_000}, 400),
            ({"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}, 429),  # PRECALL_MAX=0
        ]:
            async with http.post(f"{instance.url}/api/precall/offer", json=body) as resp:
                assert resp.status == status, await resp.text()
                assert (await resp.json())["error"]["message"]


async def test_a_broken_offer_is_refused_clearly(instance: Instance) -> None:
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{instance.url}/api/precall/offer", json={"type": "offer", "sdp": "v=0"}) as resp:
            assert resp.status == 400
            assert "offer" in (await resp.json())["error"]["message"]
    assert not instance.services.precall.active
