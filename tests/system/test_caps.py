"""Caps per user on the live side (server/live/caps.py): the request beyond each cap is refused with
its code and a message that says what to do, the user's earlier work stands, and every other
user goes on as before. Two instances on one Redis wherever a cap must hold across them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import socketio
from aiortc import RTCPeerConnection

from server.live import presence
from server.records import consults
from tests.conftest import Client, Instance, StartInstance, login, until
from tests.system.test_consults import ask, request
from tests.system.test_rtc import ColourTrack, active_consult, join, peer_connection

WITHIN = 5.0


async def get_me(http: aiohttp.ClientSession, instance: Instance, token: str) -> tuple[int, dict[str, Any], str | None]:
    async with http.get(f"{instance.url}/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def test_http_requests_and_socket_events_share_one_budget_per_user(
    start_instance: StartInstance, clients
) -> None:
    env = {"RATE_EVENTS_BURST": "6", "RATE_EVENTS_PER_S": "0.001"}
    a, b = await start_instance(**env), await start_instance(**env)
    clinician = await clients(a, "bavi.clinician")
    nurse = await clients(b, "bavi.nurse")
    token, nurse_token = await login(a.url, "bavi.clinician"), await login(b.url, "bavi.nurse")
    assert (await clinician.call("presence:set", {"status": "available"}))["ok"] is True  # 1 of 6
    async with aiohttp.ClientSession() as http:
        for instance in (a, b, a, b, a):  # 5 of 6, through both instances
            status, body, _ = await get_me(http, instance, token)
            assert status == 200, body
        status, body, retry_after = await get_me(http, b, token)
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        assert "slow down" in body["error"]["message"] and "try again in" in body["error"]["message"]
        assert retry_after is not None and int(retry_after) >= 1
        # The same budget: the socket is slowed down too, on either instance.
        refused = await clinician.call("presence:set", {"status": "away"})
        assert refused["error"]["code"] == "rate_limited", refused
        # Another user of the same hospital is not.
        for instance in (a, b):
            status, body, _ = await get_me(http, instance, nurse_token)
            assert status == 200, body
    assert (await nurse.call("presence:set", {"status": "available"}))["ok"] is True
    # The clinician's earlier work stands: the status they set before the flood.
    assert (await presence.of(a.services.redis, (await get_user_id(a, "bavi.clinician"))))["status"] == "available"


async def get_user_id(instance: Instance, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{instance.url}/api/login", json={"username": username, "password": "demo"}) as resp:
            return str((await resp.json())["user"]["id"])


async def test_a_clinician_has_at_most_three_waiting_requests_across_instances(two_instances, clients) -> None:
    a, b = two_instances
    on_a, on_b = await clients(a, "bavi.clinician"), await clients(b, "bavi.clinician")
    # Six at once from two devices on two instances (no surgeon online: they wait in the queue).
    payloads = [request() for _ in range(6)]
    acks = await asyncio.gather(
        *(device.call("consult:request", p) for device, p in zip([on_a, on_b] * 3, payloads, strict=True))
    )
    made = [ack["consult"] for ack in acks if ack["ok"]]
    refused = [ack["error"] for ack in acks if not ack["ok"]]
    assert len(made) == 3 and len(refused) == 3, acks
    for error in refused:
        assert error["code"] == "rate_limited" and "at most 3" in error["message"], error
        assert "retry_after_s" not in error  # a cap: no wait frees it, the clinician must act
    # A repeated request (the same op_id, after a lost ack) is answered with what it made.
    first = next(p for p, ack in zip(payloads, acks, strict=True) if ack["ok"])
    again = await on_b.call("consult:request", first)
    assert again["ok"] is True and again["consult"]["id"] == acks[payloads.index(first)]["consult"]["id"]
    # Another clinician asks as before.
    nurse = await clients(b, "bavi.nurse")
    await ask(nurse)
    # The first three still wait; cancelling one makes room for a new one.
    for consult in made:
        stored = await consults.get(a.services.db, consult["id"])
        assert stored is not None and stored.status == "queued"
    assert (await on_a.call("consult:cancel", {"consult_id": made[0]["id"]}))["ok"] is True
    await ask(on_b)


async def test_a_clinician_has_one_open_emergency_that_rings_once(two_instances, clients) -> None:
    a, b = two_instances
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    clinician = await clients(a, "bavi.clinician")
    emergency = await ask(clinician, urgency="emergency")
    assert (await surgeon.next("consult:offer"))["consult"]["id"] == emergency["id"]
    second = await clinician.call("consult:request", request(urgency="emergency"))
    assert second["ok"] is False and second["error"]["code"] == "rate_limited", second
    assert "emergency" in second["error"]["message"] and "at most 1" in second["error"]["message"]
    await asyncio.sleep(0.3)
    assert surgeon.queue("consult:offer").empty()  # rung once, not twice
    # A routine request of the same clinician is within its own cap.
    await ask(clinician)
    # Another clinician's emergency is theirs to make.
    nurse = await clients(b, "bavi.nurse")
    await ask(nurse, urgency="emergency")
    # The first emergency is still offered and can be accepted.
    accepted = await surgeon.call("consult:accept", {"consult_id": emergency["id"]})
    assert accepted["ok"] is True and accepted["consult"]["status"] == "active", accepted


async def refused_connect(url: str, token: str) -> dict[str, Any]:
    """The error data of a refused Socket.IO connect."""
    sio = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    sio.on("connect_error", refusals.append)
    with contextlib.suppress(socketio.exceptions.ConnectionError):
        await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    await sio.eio.disconnect(abort=True)
    assert refusals, "the connect was accepted"
    return dict(refusals[0]["data"])


async def test_sockets_per_user_are_capped_across_instances_and_released_on_disconnect(
    start_instance: StartInstance, clients
) -> None:
    a, b = await start_instance(MAX_SOCKETS_PER_USER="3"), await start_instance(MAX_SOCKETS_PER_USER="3")
    devices = [
        await clients(a, "bavi.clinician"),
        await clients(a, "bavi.clinician"),
        await clients(b, "bavi.clinician"),
    ]
    token = await login(b.url, "bavi.clinician")
    for instance in (a, b):
        error = await refused_connect(instance.url, token)
        assert error["code"] == "rate_limited" and "3" in error["message"], error
    # The user's open sockets still work; another user connects as before.
    for device in devices:
        assert (await device.call("presence:set", {"status": "available"}))["ok"] is True
    await clients(b, "bavi.nurse")
    # A closed socket gives its place back.
    await devices[0].close()
    replacement = Client()
    deadline = asyncio.get_running_loop().time() + WITHIN
    while True:
        try:
            await replacement.connect(b.url, token)
            break
        except socketio.exceptions.ConnectionError:
            assert asyncio.get_running_loop().time() < deadline, "the closed socket's place was not given back"
            replacement = Client()
            await asyncio.sleep(0.1)
    await replacement.close()


async def test_the_sockets_of_a_crashed_instance_lapse_from_the_count(start_instance: StartInstance) -> None:
    instance = await start_instance(MAX_SOCKETS_PER_USER="2")
    user_id = await get_user_id(instance, "bavi.clinician")
    # An instance died holding two sockets of this user: no disconnect ran, no heartbeat renews them.
    for n in range(2):
        await presence.connect(instance.services.redis, user_id, f"0123456789ab~gone{n}", 1, "away")
    token = await login(instance.url, "bavi.clinician")
    assert (await refused_connect(instance.url, token))["code"] == "rate_limited"
    await asyncio.sleep(1.2)  # their heartbeat lapses (PRESENCE_TTL_S, here 1 s)
    client = Client()
    await client.connect(instance.url, token)
    await client.close()


async def test_one_seat_per_user_a_second_join_replaces_the_first(two_instances, clients) -> None:
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    cid = consult["id"]
    first = await join(clinician, cid)
    surgeon_peer = (await join(surgeon, cid))["peer_id"]
    other_tab = await clients(b, "bavi.clinician")  # the same clinician, another tab, another instance
    second = await join(other_tab, cid)
    assert second["peer_id"] == first["peer_id"]
    assert [p["peer_id"] for p in second["peers"]] == [surgeon_peer]  # the new tab offers to the surgeon
    told = await clinician.next("consult:replaced")
    assert told["consult_id"] == cid and "another tab or device" in told["message"]
    rejoined = await until(surgeon, "consult:peer-joined", lambda p: p["peer_id"] == first["peer_id"])
    assert rejoined["rejoined"] is True  # the surgeon renegotiates with the new tab
    # The old tab is out of the call: it cannot signal; the new one can.
    signal = {"consult_id": cid, "to": surgeon_peer, "data": {"type": "offer", "sdp": "v=0"}}
    assert (await clinician.call("rtc:signal", signal))["error"]["code"] == "forbidden"
    assert (await other_tab.call("rtc:signal", signal))["ok"] is True
    relayed = await surgeon.next("rtc:signal")
    assert relayed["from"] == first["peer_id"]
    # Leaving or closing the old tab takes nothing from the new one.
    assert (await clinician.call("consult:leave", {"consult_id": cid}))["ok"] is True
    await clinician.close()
    await asyncio.sleep(0.5)
    assert surgeon.queue("consult:peer-left").empty() and surgeon.queue("consult:peer-reconnecting").empty()
    peers = await a.services.rooms.peers(f"consult:{cid}")
    assert sorted(p.peer_id for p in peers) == sorted([first["peer_id"], surgeon_peer])
    assert next(p for p in peers if p.peer_id == first["peer_id"]).sid == other_tab.sio.get_sid()


async def test_one_user_cannot_take_every_seat_of_a_call(two_instances, clients) -> None:
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    tabs = [clinician] + [await clients(a if i % 2 else b, "bavi.clinician") for i in range(5)]
    for tab in tabs:  # six joins, one person
        await join(tab, consult["id"])
    joined = await join(surgeon, consult["id"])  # the accepted specialist gets in
    assert [p["user"]["role"] for p in joined["peers"]] == ["clinician"]
    assert len(await b.services.rooms.peers(f"consult:{consult['id']}")) == 2


async def precall_offer(pc: RTCPeerConnection) -> dict[str, str]:
    pc.addTrack(ColourTrack((30, 30, 220)))
    await pc.setLocalDescription(await pc.createOffer())
    return {"type": "offer", "sdp": pc.localDescription.sdp}


async def post_precall(instance: Instance, token: str, offer: dict[str, str]) -> tuple[int, dict[str, Any], str | None]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{instance.url}/api/precall/offer", json=offer) as resp:
            return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def test_one_precall_check_per_user_across_instances(start_instance: StartInstance) -> None:
    a, b = await start_instance(PRECALL_SECONDS="2"), await start_instance(PRECALL_SECONDS="2")
    token, nurse_token = await login(a.url, "bavi.clinician"), await login(b.url, "bavi.nurse")
    pcs = [peer_connection(), peer_connection()]
    try:
        offer, nurse_offer = await precall_offer(pcs[0]), await precall_offer(pcs[1])
        status, body, _ = await post_precall(a, token, offer)
        assert status == 200, body
        status, body, retry_after = await post_precall(b, token, offer)
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        assert "one at a time" in body["error"]["message"] and retry_after is not None
        assert len(a.services.precall.active) == 1 and not b.services.precall.active  # the first runs on
        status, body, _ = await post_precall(b, nurse_token, nurse_offer)  # another user checks as before
        assert status == 200, body
        # When the first check closes (after PRECALL_SECONDS) the clinician may check again.
        deadline = asyncio.get_running_loop().time() + 6
        while (status := (await post_precall(b, token, offer))[0]) == 429:
            assert asyncio.get_running_loop().time() < deadline, "the first check's slot was not given back"
            await asyncio.sleep(0.25)
        assert status == 200
    finally:
        for pc in pcs:
            await pc.close()


async def test_one_seat_per_user_in_a_rounds_call_too(two_instances, clients) -> None:
    from tests.system.test_rounds import join as join_round
    from tests.system.test_rounds import new_round

    a, b = two_instances
    rid = (await new_round(a))["id"]
    lead = await clients(b, "xanhpon.icu")  # a specialist at Xanh Pôn, the lead
    first_tab, second_tab = await clients(a, "bavi.clinician"), await clients(b, "bavi.clinician")
    first = await join_round(first_tab, rid)
    lead_peer = (await join_round(lead, rid))["peer_id"]
    second = await join_round(second_tab, rid)
    assert second["peer_id"] == first["peer_id"] and [p["peer_id"] for p in second["peers"]] == [lead_peer]
    told = await first_tab.next("round:replaced")
    assert told["round_id"] == rid and "another tab or device" in told["message"]
    signal = {"round_id": rid, "to": lead_peer, "data": {"type": "offer", "sdp": "v=0"}}
    assert (await first_tab.call("rtc:signal", signal))["error"]["code"] == "forbidden"
    assert (await second_tab.call("rtc:signal", signal))["ok"] is True
    assert len(await a.services.rooms.peers(f"round:{rid}")) == 2
