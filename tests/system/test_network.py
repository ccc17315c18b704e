"""A consult over a district network: 150 ms each way, 5 % loss on TCP, and a link that goes down.

The network is emulated in userspace by tests/system/netem.py (a TCP proxy on loopback), so this runs
anywhere. Figures are printed, never asserted: only generous timeouts bound the test.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
import socketio

from tests.conftest import PASSWORD, Client, Instance, until
from tests.system.netem import Netem
from tests.system.test_consults import request
from tests.system.test_notes import note

# Time limits a user feels (a call within seconds, a recording in real time): run on CPU not
# shared with another test (`make test` runs these after the rest, in one process).
pytestmark = pytest.mark.alone

WITHIN = 20.0  # seconds: a generous bound for anything over the bad link
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


class ReconnectingClient(Client):
    """A client that reconnects by itself, as socket.io-client does in the browser."""

    def __init__(self) -> None:
        super().__init__()
        self.sio = socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1.0, randomization_factor=0.0
        )
        self.sio.on("*", self._record)

    async def call(self, event: str, data: Any = None, namespace: str = "/") -> Any:
        return await self.sio.call(event, data, namespace=namespace, timeout=WITHIN)


async def login_via(link: Netem, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{link.url}/api/login", json={"username": username, "password": PASSWORD}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return str(body["token"])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def timed_note(client: Client, payload: dict[str, Any], acks: list[float]) -> dict[str, Any]:
    started = time.monotonic()
    ack = await client.call("note:add", payload)
    acks.append(time.monotonic() - started)
    assert ack["ok"] is True, ack
    return dict(ack["note"])


async def test_a_consult_completes_over_a_district_link_that_drops(instance: Instance) -> None:
    port = int(instance.url.rsplit(":", 1)[1])
    district = await Netem(port, seed=1).start()  # Ba Vì
    hanoi = await Netem(port, seed=2).start()  # Xanh Pôn: the same emulated link, other luck
    clinician, surgeon = ReconnectingClient(), ReconnectingClient()
    acks: list[float] = []
    try:
        await clinician.connect(district.url, await login_via(district, "bavi.clinician"))
        await surgeon.connect(hanoi.url, await login_via(hanoi, "xanhpon.surgeon"))
        await clinician.next("session:state", WITHIN)
        await surgeon.next("session:state", WITHIN)

        asked = await clinician.call("consult:request", request())
        assert asked["ok"] is True, asked
        consult_id = asked["consult"]["id"]
        await until(surgeon, "consult:offer", lambda o: o["consult"]["id"] == consult_id, WITHIN)
        assert (await surgeon.call("consult:accept", {"consult_id": consult_id}))["ok"] is True
        await until(clinician, "consult:updated", lambda u: u["consult"]["status"] == "active", WITHIN)

        # The call: the clinician joins first; the surgeon, the newcomer, offers; the clinician answers.
        clinician_peer = (await clinician.call("consult:join", {"consult_id": consult_id}))["peer_id"]
        joined = await surgeon.call("consult:join", {"consult_id": consult_id})
        assert [p["peer_id"] for p in joined["peers"]] == [clinician_peer]
        surgeon_peer = joined["peer_id"]
        await signal(surgeon, clinician, consult_id, clinician_peer, "offer")
        await signal(clinician, surgeon, consult_id, surgeon_peer, "answer")

        written = [await timed_note(clinician, note(consult_id, f"Diễn biến {i}"), acks) for i in range(12)]

        # The district link goes down. The surgeon writes meanwhile; the clinician comes back by itself.
        dropped_at = time.monotonic()
        district.drop()
        await until(surgeon, "consult:peer-reconnecting", lambda p: p["peer_id"] == clinician_peer, WITHIN)
        written += [await timed_note(surgeon, note(consult_id, f"Hội chẩn {i}"), acks) for i in range(3)]
        state = await clinician.next("session:state", WITHIN)  # the second one: after the reconnect
        assert [c["id"] for c in state["consults"] if c["status"] == "active"] == [consult_id]
        rejoined = await clinician.call("consult:join", {"consult_id": consult_id})
        resumed_s = time.monotonic() - dropped_at
        assert rejoined["peer_id"] == clinician_peer  # back inside the grace period: the same peer
        back = await until(surgeon, "consult:peer-joined", lambda p: p["peer_id"] == clinician_peer, WITHIN)
        assert back["rejoined"] is True
        # What was written meanwhile, from the highest seq the clinician held.
        missed = await clinician.call("note:list", {"consult_id": consult_id, "after_seq": 12})
        assert [n["text"] for n in missed["notes"]] == [f"Hội chẩn {i}" for i in range(3)]
        # The call renegotiates: the one who came back offers again.
        await signal(clinician, surgeon, consult_id, surgeon_peer, "offer")
        await signal(surgeon, clinician, consult_id, clinician_peer, "answer")

        written += [await timed_note(clinician, note(consult_id, f"Kết luận {i}"), acks) for i in range(3)]
        ended = await surgeon.call("consult:end", {"consult_id": consult_id, "outcome": "treated_locally"})
        assert ended["ok"] is True, ended
        await until(clinician, "consult:updated", lambda u: u["consult"]["status"] == "ended", WITHIN)
        listed = await surgeon.call("note:list", {"consult_id": consult_id})
        assert [n["id"] for n in listed["notes"]] == [n["id"] for n in written]
        assert [n["seq"] for n in listed["notes"]] == list(range(1, len(written) + 1))
    finally:
        for client in (clinician, surgeon):
            await client.sio.shutdown()
        await district.close()
        await hanoi.close()
    print(
        f"\nnetem 150 ms each way, 5 % loss: note ack p50 {percentile(acks, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(acks, 0.95) * 1000:.0f} ms over {len(acks)} notes; "
        f"back in the call {resumed_s:.1f} s after the link dropped; "
        f"{district.late_chunks + hanoi.late_chunks} chunks held back by loss"
    )


async def signal(sender: Client, receiver: Client, consult_id: str, to: str, kind: str) -> None:
    """`sender` sends an offer or answer to peer `to`; `receiver` gets it, in order, through the server."""
    ack = await sender.call("rtc:signal", {"consult_id": consult_id, "to": to, "data": {"type": kind, "sdp": SDP}})
    assert ack == {"ok": True}, ack
    await until(receiver, "rtc:signal", lambda m: m["data"]["type"] == kind and m["consult_id"] == consult_id, WITHIN)
