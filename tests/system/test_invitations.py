"""Invitations to a consult: only its two parties invite, only people of their hospitals'
networks, and an invitation can be withdrawn, which ends the user's access at once, on every
instance, and survives Redis losing its state."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from sqlalchemy import select

from server.actions import recovery
from server.records.models import User
from tests.conftest import CONSENT, Client, Instance, StartInstance, add_user, login, until
from tests.system.test_consults import timeline_of
from tests.system.test_notes import add, note
from tests.system.test_rtc import active_consult, join


async def user_id(instance: Instance, username: str) -> str:
    async with instance.services.db.session() as session:
        found = await session.scalar(select(User.id).where(User.username == username))
    assert found is not None, username
    return found


async def invite(client: Client, consult_id: str, user: str) -> dict[str, Any]:
    return await client.call("consult:invite", {"consult_id": consult_id, "user_id": user})


async def uninvite(client: Client, consult_id: str, user: str) -> dict[str, Any]:
    return await client.call("consult:uninvite", {"consult_id": consult_id, "user_id": user})


async def test_only_people_of_the_two_hospitals_networks_can_be_invited(
    start_instance: StartInstance, clients, database_url: str
) -> None:
    instance = await start_instance()
    await add_user(database_url, "batrai.clinician", "clinician", "tyt-batrai")  # Hà Nội, linked to nobody
    _, surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    # Ba Vì district hospital asked Xanh Pôn: Xanh Pôn's other lower hospital is in its network.
    for username in ("bavi.nurse", "xanhpon.icu"):
        ack = await invite(surgeon, cid, await user_id(instance, username))
        assert ack["ok"] is True, (username, ack)
    for username in ("tienyen.clinician", "quangninh.trauma", "batrai.clinician"):
        ack = await invite(surgeon, cid, await user_id(instance, username))
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden", (username, ack)
        assert "sister hospitals" in ack["error"]["message"]
        stranger = await clients(instance, username)
        refused = await stranger.call("note:list", {"consult_id": cid})
        assert refused["error"]["code"] == "forbidden", (username, refused)
    for who in ("soyte.supervisor", "admin"):  # neither a specialist nor a clinician
        ack = await invite(surgeon, cid, await user_id(instance, who))
        assert ack["error"]["code"] == "not_found", (who, ack)


async def test_only_the_requester_and_the_accepted_specialist_invite(
    start_instance: StartInstance, clients, database_url: str
) -> None:
    instance = await start_instance()
    await add_user(database_url, "bavi.colleague", "clinician", "bavi-dgh")
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    icu_id, obgyn_id = await user_id(instance, "xanhpon.icu"), await user_id(instance, "xanhpon.obgyn")
    assert (await invite(clinician, cid, icu_id))["ok"] is True
    colleague = await clients(instance, "bavi.colleague")  # a participant: the district team
    icu = await clients(instance, "xanhpon.icu")  # a participant: invited
    await join(colleague, cid)
    await join(icu, cid)
    for participant in (colleague, icu):
        for event in ("consult:invite", "consult:uninvite"):
            ack = await participant.call(event, {"consult_id": cid, "user_id": obgyn_id})
            assert ack["ok"] is False and ack["error"]["code"] == "forbidden", (event, ack)
            assert "only the clinician who asked and the accepted specialist" in ack["error"]["message"]
    refused = await icu.call("consult:uninvite", {"consult_id": cid, "user_id": icu_id})  # not even themselves
    assert refused["error"]["code"] == "forbidden"
    obgyn = await clients(instance, "xanhpon.obgyn")
    assert (await obgyn.call("consult:join", {"consult_id": cid}))["error"]["code"] == "forbidden"
    assert (await invite(surgeon, cid, obgyn_id))["ok"] is True
    await join(obgyn, cid)


async def test_withdrawing_an_invitation_ends_access_on_every_instance(two_instances, clients) -> None:
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    cid = consult["id"]
    icu_id = await user_id(a, "xanhpon.icu")
    icu = await clients(b, "xanhpon.icu")  # on the other instance than the requester
    assert (await invite(clinician, cid, icu_id))["ok"] is True
    await join(clinician, cid)
    joined = await join(icu, cid)
    await add(icu, note(cid, "Đề nghị chụp CT bụng", section="investigations"))
    assert (await icu.call("note:list", {"consult_id": cid}))["ok"] is True

    ack = await uninvite(clinician, cid, icu_id)
    assert ack["ok"] is True and ack["consult"]["id"] == cid, ack
    told = await icu.next("consult:uninvited")
    assert told["consult_id"] == cid and told["by"]["id"] == consult["requester"]["id"]
    left = await until(clinician, "consult:peer-left", lambda m: m["peer_id"] == joined["peer_id"])
    assert left["user"]["id"] == icu_id  # out of the call, the others are told
    assert [p.user["id"] for p in await a.services.rooms.peers(f"consult:{cid}")] == [consult["requester"]["id"]]

    for event, payload in [
        ("note:list", {"consult_id": cid}),
        ("consult:join", {"consult_id": cid}),
        ("note:add", note(cid, "vẫn ghi được?")),
    ]:
        refused = await icu.call(event, payload)
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden", (event, refused)
    token = await login(b.url, "xanhpon.icu")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{b.url}/api/consults/{cid}") as resp:
            assert resp.status == 403
    # Notes written after the withdrawal no longer reach them.
    late = "Sau khi rút lời mời"
    await add(surgeon, note(cid, late, section="plan"))
    await until(clinician, "note:added", lambda m: m["note"]["text"] == late)
    await asyncio.sleep(0.3)  # had it been sent to them too, it would be here by now
    received = icu.queue("note:added")
    texts = [received.get_nowait()["note"]["text"] for _ in range(received.qsize())]
    assert late not in texts
    # The timeline says who withdrew them; withdrawing again changes nothing.
    assert ("uninvited", consult["requester"]["id"]) in await timeline_of(a, cid)
    assert (await uninvite(surgeon, cid, icu_id))["ok"] is True
    assert [kind for kind, _ in await timeline_of(a, cid)].count("uninvited") == 1


async def test_a_withdrawn_clinician_of_the_requesting_hospital_keeps_their_place(
    start_instance: StartInstance, clients, database_url: str
) -> None:
    instance = await start_instance()
    await add_user(database_url, "bavi.colleague", "clinician", "bavi-dgh")
    clinician, _, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    colleague_id = await user_id(instance, "bavi.colleague")
    colleague = await clients(instance, "bavi.colleague")
    assert (await invite(clinician, cid, colleague_id))["ok"] is True
    await join(colleague, cid)
    assert (await uninvite(clinician, cid, colleague_id))["ok"] is True
    assert (await colleague.call("note:list", {"consult_id": cid}))["ok"] is True  # the district team still
    peers = await instance.services.rooms.peers(f"consult:{cid}")
    assert colleague_id in {p.user["id"] for p in peers}


async def test_a_withdrawn_invitation_stays_withdrawn_when_redis_is_rebuilt(instance: Instance, clients) -> None:
    clinician, _, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    icu_id, obgyn_id = await user_id(instance, "xanhpon.icu"), await user_id(instance, "xanhpon.obgyn")
    for who in (icu_id, obgyn_id):
        assert (await invite(clinician, cid, who))["ok"] is True
    assert (await uninvite(clinician, cid, icu_id))["ok"] is True
    rooms = instance.services.rooms
    await instance.services.redis.delete(f"room:consult:{cid}:invited")  # Redis lost what it held
    await recovery.rebuild(instance.services, [])  # the events it causes are not looked at here
    assert await rooms.invited(f"consult:{cid}", obgyn_id) is True
    assert await rooms.invited(f"consult:{cid}", icu_id) is False


async def test_invitations_are_for_an_accepted_consult(instance: Instance, clients) -> None:
    clinician = await clients(instance, "bavi.clinician")
    queued = await clinician.call(
        "consult:request",
        {
            "op_id": "inv-q1",
            "specialty": "obstetrics",
            "urgency": "routine",
            "patient": {"ref": "BV-7"},
            "consent": CONSENT,
        },
    )
    cid = queued["consult"]["id"]
    icu_id = await user_id(instance, "xanhpon.icu")
    for event in ("consult:invite", "consult:uninvite"):
        ack = await clinician.call(event, {"consult_id": cid, "user_id": icu_id})
        assert ack["error"]["code"] == "conflict", (event, ack)
        missing = await clinician.call(event, {"consult_id": "no-such-consult", "user_id": icu_id})
        assert missing["error"]["code"] == "not_found"
