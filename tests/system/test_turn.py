"""TURN, really: calls through Debian's coturn on loopback (tests/system/turn.py), relay-only.

aiortc peers and the pre-call echo take the ICE servers and policy the service hands out
(server/runtime/ice.py), so every candidate they offer is a relay on coturn and media flows
through it, over UDP and over TCP. coturn refuses an expired REST username, and
`GET /api/ice-servers` hands out fresh credentials for a call that outlives its own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection, RTCSessionDescription

from server.runtime.ice import call_network, turn_credentials
from server.runtime.settings import load_settings
from tests.conftest import StartInstance, login
from tests.system.test_rtc import ColourTrack
from tests.system.turn import SECRET, TurnServer


def relay_only(network: dict[str, Any]) -> RTCPeerConnection:
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in network["ice_servers"]
    ]
    policy = RTCIceTransportPolicy(network["ice_transport_policy"])
    return RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))


def candidate_types(sdp: str) -> set[str]:
    return {line.split(" typ ")[1].split()[0] for line in sdp.splitlines() if line.startswith("a=candidate:")}


async def connected(pc: RTCPeerConnection, within: float = 15.0) -> None:
    async def wait() -> None:
        while pc.connectionState != "connected":
            assert pc.connectionState not in ("failed", "closed"), pc.connectionState
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), within)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_relay_only_call_goes_through_coturn(turn: TurnServer, tmp_path: Any, transport: str) -> None:
    url = turn.udp_url if transport == "udp" else turn.tcp_url
    settings = load_settings({"TELEROUNDS_VAR_DIR": str(tmp_path), **turn.settings(url)})
    caller = relay_only(call_network(settings, "u-bavi"))
    callee = relay_only(call_network(settings, "u-xanhpon"))
    caller.addTrack(ColourTrack((30, 30, 220)))
    received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    callee.on("track", lambda track: received.done() or received.set_result(track))
    try:
        await caller.setLocalDescription(await caller.createOffer())
        await callee.setRemoteDescription(caller.localDescription)
        await callee.setLocalDescription(await callee.createAnswer())
        await caller.setRemoteDescription(callee.localDescription)
        # Relay candidates only, on both sides: whatever pair ICE chose goes through coturn.
        assert candidate_types(caller.localDescription.sdp) == {"relay"}
        assert candidate_types(callee.localDescription.sdp) == {"relay"}
        await connected(caller)
        frame = await asyncio.wait_for((await asyncio.wait_for(received, 10)).recv(), 10)
        assert frame.width > 0
    finally:
        await caller.close()
        await callee.close()


async def allocate(turn: TurnServer, username: str, password: str, transport: str) -> None:
    """One TURN allocation with these credentials (raises when coturn refuses them)."""
    transport_, _ = await create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", turn.port),
        username=username,
        password=password,
        transport=transport,
    )
    assert transport_.get_extra_info("sockname")[0] == "127.0.0.1"  # a relay address on coturn
    transport_.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_coturn_refuses_expired_credentials_and_takes_fresh_ones(turn: TurnServer, transport: str) -> None:
    fresh = turn_credentials(SECRET, "u-bavi", 60)
    await allocate(turn, *fresh, transport)
    expired = turn_credentials(SECRET, "u-bavi", 60, now=time.time() - 120)  # ran out a minute ago
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(turn, *expired, transport)
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401


async def test_fresh_ice_servers_for_a_call_that_outlives_its_credentials(
    start_instance: StartInstance, turn: TurnServer
) -> None:
    instance = await start_instance(**turn.settings(ttl_s=600))
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{instance.url}/api/ice-servers") as resp:
            assert resp.status == 200
            network = await resp.json()
    assert network["ice_transport_policy"] == "relay" and network["ice_ttl_s"] == 600
    (server,) = network["ice_servers"]
    assert server["urls"] == [turn.udp_url, turn.tcp_url]
    expiry = int(server["username"].split(":")[0])
    assert time.time() + 590 < expiry <= time.time() + 601
    await allocate(turn, server["username"], server["credential"], "udp")  # coturn takes them


async def test_the_precall_echo_answers_through_turn_only(start_instance: StartInstance, turn: TurnServer) -> None:
    instance = await start_instance(**turn.settings())
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{instance.url}/api/ice-servers") as resp:
            pc = relay_only(await resp.json())
        pc.addTrack(ColourTrack((30, 30, 220)))
        track_back: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pc.on("track", lambda track: track_back.done() or track_back.set_result(track))
        try:
            await pc.setLocalDescription(await pc.createOffer())
            async with http.post(
                f"{instance.url}/api/precall/offer", json={"type": "offer", "sdp": pc.localDescription.sdp}
            ) as resp:
                answer = await resp.json()
                assert resp.status == 200, answer
            assert candidate_types(answer["sdp"]) == {"relay"}  # the echo peer offers coturn only
            await pc.setRemoteDescription(RTCSessionDescription(**answer))
            await connected(pc)
            frame = await asyncio.wait_for((await asyncio.wait_for(track_back, 10)).recv(), 10)
            red, _green, blue = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
            assert blue > 150 and red < 90  # our own frames came back through the relay
        finally:
            await pc.close()
