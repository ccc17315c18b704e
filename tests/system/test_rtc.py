"""Consult calls: joining, relaying WebRTC signaling between instances, refusals, reconnects."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from fractions import Fraction
from typing import Any

import av
import numpy
import pytest
import redis.asyncio as aioredis
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from server.live.rooms import Rooms
from tests.conftest import Client, Instance, StartInstance, add_user, until
from tests.system.test_consults import ask


async def active_consult(clients, a: Instance, b: Instance) -> tuple[Client, Client, dict[str, Any]]:
    """A clinician at Ba Vì (on `a`) and a specialist at Xanh Pôn (on `b`) in an accepted consult."""
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = await ask(clinician)
    await surgeon.next("consult:offer")
    ack = await surgeon.call("consult:accept", {"consult_id": consult["id"]})
    assert ack["ok"], ack
    return clinician, surgeon, ack["consult"]


async def join(client: Client, consult_id: str) -> dict[str, Any]:
    ack = await client.call("consult:join", {"consult_id": consult_id})
    assert ack["ok"] is True, ack
    return ack


class ColourTrack(VideoStreamTrack):
    """A synthetic camera: solid frames of one colour."""

    def __init__(self, rgb: tuple[int, int, int]) -> None:
        super().__init__()
        self.image = numpy.zeros((240, 320, 3), numpy.uint8)
        self.image[:, :] = rgb

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.image, format="rgb24")
        frame.pts, frame.time_base = pts, Fraction(time_base)
        return frame


def peer_connection() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback only, nothing outside


async def answer_signals(client: Client, pc: RTCPeerConnection, consult_id: str) -> None:
    """The answering side: take the offer from `rtc:signal`, answer through the server."""
    message = await until(client, "rtc:signal", lambda m: m["data"].get("type") == "offer", within=10)
    assert message["consult_id"] == consult_id
    await pc.setRemoteDescription(RTCSessionDescription(**message["data"]))
    await pc.setLocalDescription(await pc.createAnswer())
    ack = await client.call(
        "rtc:signal",
        {"consult_id": consult_id, "to": message["from"], "data": {"type": "answer", "sdp": pc.localDescription.sdp}},
    )
    assert ack == {"ok": True}


async def connect_call(
    offerer: Client, answerer: Client, consult_id: str, answerer_peer: str
) -> tuple[RTCPeerConnection, RTCPeerConnection, Any]:
    """A real WebRTC connection through the server: video one way, a data channel both ways."""
    pc_offer, pc_answer = peer_connection(), peer_connection()
    pc_offer.addTrack(ColourTrack((200, 30, 30)))
    channel = pc_offer.createDataChannel("notes")
    received_track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc_answer.on("track", lambda track: received_track.done() or received_track.set_result(track))
    messages: asyncio.Queue[str] = asyncio.Queue()
    pc_answer.on("datachannel", lambda ch: ch.on("message", messages.put_nowait))
    answering = asyncio.create_task(answer_signals(answerer, pc_answer, consult_id))
    await pc_offer.setLocalDescription(await pc_offer.createOffer())
    ack = await offerer.call(
        "rtc:signal",
        {
            "consult_id": consult_id,
            "to": answerer_peer,
            "data": {"type": "offer", "sdp": pc_offer.localDescription.sdp},
        },
    )
    assert ack == {"ok": True}
    answer = await until(offerer, "rtc:signal", lambda m: m["data"].get("type") == "answer", within=10)
    await pc_offer.setRemoteDescription(RTCSessionDescription(**answer["data"]))
    await answering
    track = await asyncio.wait_for(received_track, 10)
    return pc_offer, pc_answer, (track, channel, messages)


async def wait_connected(*pcs: RTCPeerConnection) -> None:
    for _ in range(200):
        if all(pc.connectionState == "connected" for pc in pcs):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not connected: {[pc.connectionState for pc in pcs]}")


async def test_two_aiortc_peers_on_two_instances_connect_through_the_server(two_instances, clients) -> None:
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    first = await join(clinician, consult["id"])
    assert first["peers"] == [] and first["ice_servers"] == [] and first["notes"] == []
    second = await join(surgeon, consult["id"])
    assert [p["peer_id"] for p in second["peers"]] == [first["peer_id"]]
    joined = await clinician.next("consult:peer-joined")
    assert joined["peer_id"] == second["peer_id"] and joined["user"]["name"]

    # The newcomer offers to each peer already there.
    pc_offer, pc_answer, (track, channel, messages) = await connect_call(
        surgeon, clinician, consult["id"], first["peer_id"]
    )
    try:
        await wait_connected(pc_offer, pc_answer)
        frame = await asyncio.wait_for(track.recv(), 10)
        red, green, _ = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
        assert red > 150 and green < 80  # the colour that was sent
        opened = asyncio.Event()
        channel.on("open", opened.set)
        if channel.readyState != "open":
            await asyncio.wait_for(opened.wait(), 10)
        channel.send("xin chào")
        assert await asyncio.wait_for(messages.get(), 10) == "xin chào"
    finally:
        await pc_offer.close()
        await pc_answer.close()


async def test_one_senders_signals_arrive_in_order_across_instances(two_instances, clients) -> None:
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    first = await join(clinician, consult["id"])
    await join(surgeon, consult["id"])
    for i in range(100):  # sent without waiting for acks
        candidate = {"candidate": f"candidate:{i} 1 udp 2122260223 192.0.2.2 {40000 + i} typ host", "sdpMid": "0"}
        await surgeon.sio.emit(
            "rtc:signal", {"consult_id": consult["id"], "to": first["peer_id"], "data": {"candidate": candidate}}
        )
    seen = [(await clinician.next("rtc:signal"))["data"]["candidate"]["candidate"].split()[0] for _ in range(100)]
    assert seen == [f"candidate:{i}" for i in range(100)]


async def test_a_peers_media_state_is_relayed_across_instances(two_instances, clients) -> None:
    """A tile shows the other side's muted, camera-off and screen-share badges from what it sends."""
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    first = await join(clinician, consult["id"])
    second = await join(surgeon, consult["id"])
    media = {"media": {"audio": False, "video": True, "screen": True}}
    ack = await surgeon.call("rtc:signal", {"consult_id": consult["id"], "to": first["peer_id"], "data": media})
    assert ack["ok"] is True, ack
    relayed = await clinician.next("rtc:signal")
    assert relayed == {"consult_id": consult["id"], "from": second["peer_id"], "data": media}
    for bad in (
        {"media": {"audio": "no", "video": True, "screen": False}},
        {"media": {"audio": True, "video": True}},
        {"media": {"audio": True, "video": True, "screen": False, "extra": 1}},
        {"media": True},
    ):
        refused = await surgeon.call("rtc:signal", {"consult_id": consult["id"], "to": first["peer_id"], "data": bad})
        assert refused["ok"] is False and refused["error"]["code"] == "invalid", (bad, refused)
    assert clinician.queue("rtc:signal").empty()


async def test_refusals(instance: Instance, clients) -> None:
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    first = await join(clinician, consult["id"])
    second = await join(surgeon, consult["id"])
    cid = consult["id"]
    other_hospital = await clients(instance, "bavi.nurse")
    other_specialist = await clients(instance, "xanhpon.icu")
    for outsider in (other_hospital, other_specialist):
        assert (await outsider.call("consult:join", {"consult_id": cid}))["error"]["code"] == "forbidden"
        signal = {"consult_id": cid, "to": first["peer_id"], "data": {"type": "offer", "sdp": "v=0"}}
        assert (await outsider.call("rtc:signal", signal))["error"]["code"] == "forbidden"
    assert (await clinician.call("consult:join", {"consult_id": "nope"}))["error"]["code"] == "not_found"

    def sig(data: Any, to: str = second["peer_id"], **ids: Any) -> dict[str, Any]:
        return {"consult_id": cid, "to": to, "data": data, **ids}

    bad = [
        sig({"type": "pranswer", "sdp": "v=0"}),
        sig({"type": "offer"}),
        sig({"type": "offer", "sdp": "v=0", "extra": 1}),
        sig({"candidate": "a=candidate"}),
        sig("offer"),
        {"to": second["peer_id"], "data": {"type": "offer", "sdp": "v=0"}},
        sig({"type": "offer", "sdp": "v=0"}, round_id="r1"),
    ]
    for payload in bad:
        ack = await clinician.call("rtc:signal", payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid", (payload, ack)
    huge = await clinician.call("rtc:signal", sig({"type": "offer", "sdp": "v=0\r\n" + "a" * 70_000}))
    assert huge["error"]["code"] == "too_large"
    assert (await clinician.call("rtc:signal", sig({"type": "offer", "sdp": "v=0"}, to="ghost")))["error"][
        "code"
    ] == "not_found"
    assert surgeon.queue("rtc:signal").empty()  # nothing was relayed

    other = await ask(clinician)  # a second consult, not joined
    not_joined = {"consult_id": other["id"], "to": second["peer_id"], "data": {"type": "offer", "sdp": "v=0"}}
    assert (await clinician.call("rtc:signal", not_joined))["error"]["code"] == "forbidden"


async def test_a_seventh_peer_is_refused(instance: Instance, clients, database_url: str) -> None:
    # Seven different people: one user has one seat in a call (tests/system/test_caps.py).
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    await join(clinician, consult["id"])
    await join(surgeon, consult["id"])
    for i in range(5):  # the Ba Vì district team may join their hospital's consult
        await add_user(database_url, f"bavi.team{i}", "clinician", "bavi-dgh")
    team = [await clients(instance, f"bavi.team{i}") for i in range(5)]
    for device in team[:4]:
        await join(device, consult["id"])
    full = await team[4].call("consult:join", {"consult_id": consult["id"]})
    assert full["ok"] is False and full["error"]["code"] == "conflict" and "6" in full["error"]["message"]


async def test_invited_specialist_may_join(instance: Instance, clients) -> None:
    _clinician, surgeon, consult = await active_consult(clients, instance, instance)
    icu = await clients(instance, "xanhpon.icu")
    icu_id = (await icu.next("session:state"))["user"]["id"]
    assert (await icu.call("consult:join", {"consult_id": consult["id"]}))["error"]["code"] == "forbidden"
    assert (await surgeon.call("consult:invite", {"consult_id": consult["id"], "user_id": icu_id}))["ok"] is True
    invited = await icu.next("consult:invited")
    assert invited["consult"]["id"] == consult["id"] and invited["by"]["hospital"]["id"] == "xanhpon"
    await join(icu, consult["id"])


async def test_ice_servers_with_ephemeral_turn_credentials(start_instance: StartInstance, clients) -> None:
    instance = await start_instance(
        STUN_URLS="stun:turn.example.vn:3478",
        TURN_URLS="turn:turn.example.vn:3478",
        TURN_SECRET="s3cret",
        TURN_TTL_S="600",
    )
    clinician, _, consult = await active_consult(clients, instance, instance)
    ack = await join(clinician, consult["id"])
    stun, turn = ack["ice_servers"]
    assert stun == {"urls": ["stun:turn.example.vn:3478"]}
    expiry, user_id = turn["username"].split(":")
    assert user_id == consult["requester"]["id"]
    expected = base64.b64encode(hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected and int(expiry) > 0
    assert ack["ice_transport_policy"] == "all" and ack["ice_ttl_s"] == 600  # direct paths first, TURN second


async def test_a_dropped_peer_is_kept_through_the_grace_period_and_renegotiates(
    start_instance: StartInstance, clients
) -> None:
    a = await start_instance(RECONNECT_GRACE_S="3")
    b = await start_instance(RECONNECT_GRACE_S="3")
    clinician, surgeon, consult = await active_consult(clients, a, b)
    first = await join(clinician, consult["id"])
    second = await join(surgeon, consult["id"])
    await surgeon.close()  # the district network blips
    reconnecting = await clinician.next("consult:peer-reconnecting")
    assert reconnecting["peer_id"] == second["peer_id"]

    back = await clients(a, "xanhpon.surgeon")  # back, through the other instance
    state = await back.next("session:state")
    assert [c["id"] for c in state["consults"]] == [consult["id"]]
    again = await join(back, consult["id"])
    assert again["peer_id"] == second["peer_id"]  # same peer, same role
    rejoined = await until(clinician, "consult:peer-joined", lambda p: p["rejoined"])
    assert rejoined["peer_id"] == second["peer_id"] and rejoined["role"] == "specialist"
    pc_offer, pc_answer, _ = await connect_call(back, clinician, consult["id"], first["peer_id"])
    try:
        await wait_connected(pc_offer, pc_answer)
    finally:
        await pc_offer.close()
        await pc_answer.close()
    await asyncio.sleep(3.5)
    assert clinician.queue("consult:peer-left").empty()


async def test_a_peer_that_does_not_come_back_leaves_after_the_grace_period(
    start_instance: StartInstance, clients
) -> None:
    a = await start_instance(RECONNECT_GRACE_S="0.5")
    b = await start_instance(RECONNECT_GRACE_S="0.5")
    clinician, surgeon, consult = await active_consult(clients, a, b)
    await join(clinician, consult["id"])
    second = await join(surgeon, consult["id"])
    await surgeon.close()
    left = await clinician.next("consult:peer-left", within=5)
    assert left["peer_id"] == second["peer_id"] and left["user"]["role"] == "specialist"


@pytest.mark.parametrize("payload", [{"rtt_ms": 85, "loss_pct": 1.5, "bitrate_kbps": 900, "width": 640, "height": 360}])
async def test_call_quality_is_kept_per_peer(instance: Instance, clients, payload: dict[str, Any]) -> None:
    clinician, _, consult = await active_consult(clients, instance, instance)
    peer = (await join(clinician, consult["id"]))["peer_id"]
    assert (await clinician.call("rtc:stats", {"consult_id": consult["id"], **payload}))["ok"] is True
    quality = await instance.services.rooms.quality(f"consult:{consult['id']}")
    assert {k: quality[peer][k] for k in payload} == payload
    bad = await clinician.call("rtc:stats", {"consult_id": consult["id"], "loss_pct": 250})
    assert bad["error"]["code"] == "invalid"


async def test_of_two_peers_joining_at_once_exactly_one_is_told_to_offer(redis_url: str) -> None:
    # The list of peers already in the call comes from the same atomic step as the join: if
    # both saw each other both would offer (glare); if neither did, nobody would.
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    rooms = Rooms(redis)
    try:
        for n in range(30):
            room = f"consult:glare-{n}"
            clinician = {"id": "clinician-bavi", "name": "a clinician at Ba Vì"}
            specialist = {"id": "specialist-xanhpon", "name": "a specialist at Xanh Pôn"}
            joined = await asyncio.gather(
                rooms.join(room, clinician, "clinician", f"sid-a-{n}"),
                rooms.join(room, specialist, "specialist", f"sid-b-{n}"),
            )
            assert sorted(len(j.others) for j in joined) == [0, 1]
    finally:
        await redis.aclose()
