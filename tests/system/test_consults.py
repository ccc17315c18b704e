"""Consult requests, offers, the queue and presence, with two instances on one Redis and one database."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from sqlalchemy import select

from server.records import consults
from server.records.models import Consult
from tests.conftest import CONSENT, Client, Instance, StartInstance, add_user, until

_ops = itertools.count()


def request(specialty: str = "surgery", urgency: str = "routine", **extra: Any) -> dict[str, Any]:
    return {
        "op_id": f"op-{next(_ops)}",
        "specialty": specialty,
        "urgency": urgency,
        "patient": {"ref": "BV-0042", "summary": "Đau bụng hố chậu phải 2 ngày", "age": 34, "sex": "male"},
        "consent": CONSENT,
        **extra,
    }


async def ask(client: Client, **kwargs: Any) -> dict[str, Any]:
    ack = await client.call("consult:request", request(**kwargs))
    assert ack["ok"] is True, ack
    return ack["consult"]


def status_is(status: str, **fields: Any) -> Any:
    return lambda p: p["consult"]["status"] == status and all(p["consult"][k] == v for k, v in fields.items())


async def timeline_of(instance: Instance, consult_id: str) -> list[tuple[str, str | None]]:
    return [(e.kind, e.actor_id) for e in await consults.timeline(instance.services.db, consult_id)]


async def test_request_on_one_instance_is_offered_and_accepted_on_the_other(two_instances, clients) -> None:
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")

    consult = await ask(clinician)
    assert consult["status"] == "offered"
    offer = await surgeon.next("consult:offer")
    assert offer["consult"]["id"] == consult["id"]
    assert offer["consult"]["patient"]["ref"] == "BV-0042"
    assert offer["expires_at"] > consult["created_at"]

    ack = await surgeon.call("consult:accept", {"consult_id": consult["id"]})
    assert ack["ok"] is True and ack["consult"]["status"] == "active"
    assert ack["consult"]["specialist"]["hospital"]["id"] == "xanhpon"
    updated = await until(clinician, "consult:updated", status_is("active"))
    assert updated["consult"]["started_at"]
    busy = await until(surgeon, "presence:changed", lambda p: p["presence"]["status"] == "busy")
    assert busy["presence"]["online"] is True

    ended = await clinician.call("consult:end", {"consult_id": consult["id"], "outcome": "treated_locally"})
    assert ended["ok"] is True and ended["consult"]["status"] == "ended"
    await until(surgeon, "presence:changed", lambda p: p["presence"]["status"] == "available")
    kinds = [kind for kind, _ in await timeline_of(a, consult["id"])]
    assert kinds == ["requested", "consent", "offered", "accepted", "ended"]


async def test_the_same_op_twice_makes_one_consult(two_instances, clients) -> None:
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    payload = request()
    first = await clinician.call("consult:request", payload)
    again_elsewhere = await (await clients(b, "bavi.clinician")).call("consult:request", payload)
    assert first["ok"] and again_elsewhere["ok"]
    assert first["consult"]["id"] == again_elsewhere["consult"]["id"]


async def test_a_resent_end_gets_the_same_answer_and_ends_nothing_twice(two_instances, clients) -> None:
    """A clinician at Ba Vì ends a consult; the answer is lost, so the browser sends the same op
    again, on the other instance: the same `{ok, consult}`, one ending, nothing told twice."""
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = await ask(clinician)
    await surgeon.next("consult:offer")
    assert (await surgeon.call("consult:accept", {"consult_id": consult["id"]}))["ok"]
    end = {"consult_id": consult["id"], "op_id": "end-op-1", "outcome": "transfer", "summary": "Chuyển tuyến"}

    first = await clinician.call("consult:end", end)
    assert first["ok"] is True and first["consult"]["status"] == "ended", first
    await until(surgeon, "consult:updated", status_is("ended"))
    again = await (await clients(b, "bavi.clinician")).call("consult:end", end)
    assert again == first
    # The specialist's own end, a different op, finds the outcome chosen already: refused, not
    # answered as if its outcome had been recorded.
    other = {"consult_id": consult["id"], "op_id": "end-op-2", "outcome": "treated_locally"}
    refused = await surgeon.call("consult:end", other)
    assert refused["error"]["code"] == "conflict" and "transfer" in refused["error"]["message"], refused
    kinds = [kind for kind, _ in await timeline_of(a, consult["id"])]
    assert kinds.count("ended") == 1
    with pytest.raises(TimeoutError):  # the repeat told nobody anything
        await until(surgeon, "consult:updated", lambda p: True, within=0.5)
    # Without an op_id an end stays harmless to repeat, answered with the consult as it is.
    plain = await surgeon.call("consult:end", {"consult_id": consult["id"], "outcome": "treated_locally"})
    assert plain["ok"] is True and plain["consult"]["outcome"] == "transfer"


async def test_emergency_accepted_at_once_on_two_instances_has_one_winner(two_instances, clients, database_url) -> None:
    a, b = two_instances
    await add_user(database_url, "xanhpon.surgeon2", "specialist", "xanhpon", ("surgery",))
    clinician = await clients(a, "bavi.clinician")
    first = await clients(a, "xanhpon.surgeon")
    second = await clients(b, "xanhpon.surgeon2")
    third = await clients(b, "quangninh.trauma")
    for client in (first, second, third):
        await client.next("session:state")

    consult = await ask(clinician, urgency="emergency")
    for client in (first, second, third):
        assert (await client.next("consult:offer"))["consult"]["id"] == consult["id"]

    acks = await asyncio.gather(
        first.call("consult:accept", {"consult_id": consult["id"]}),
        second.call("consult:accept", {"consult_id": consult["id"]}),
    )
    assert sorted(ack["ok"] for ack in acks) == [False, True]
    loser = next(ack for ack in acks if not ack["ok"])
    assert loser["error"]["code"] == "conflict"
    # The third specialist's offer card is withdrawn: the consult is taken.
    taken = await until(third, "consult:updated", status_is("active"))
    assert taken["consult"]["specialist"] is not None
    assert [kind for kind, _ in await timeline_of(a, consult["id"])].count("accepted") == 1


async def test_an_unanswered_offer_moves_to_the_next_specialist(start_instance: StartInstance, clients) -> None:
    a = await start_instance(OFFER_TIMEOUT_ROUTINE_S="0.6")
    b = await start_instance(OFFER_TIMEOUT_ROUTINE_S="0.6")
    clinician = await clients(a, "bavi.clinician")
    sister = await clients(a, "xanhpon.surgeon")
    roster = await clients(b, "quangninh.trauma")
    await sister.next("session:state")
    await roster.next("session:state")

    consult = await ask(clinician)
    assert (await sister.next("consult:offer"))["consult"]["id"] == consult["id"]  # sister hospital first
    assert roster.queue("consult:offer").empty()
    moved = await roster.next("consult:offer", within=5)
    assert moved["consult"]["id"] == consult["id"]
    away = await until(sister, "presence:changed", lambda p: p["presence"]["status"] == "away")
    assert away["presence"]["online"] is True
    assert away["reason"] == "offer_missed"  # the screen asks "still on duty?" rather than going quiet
    late = await sister.call("consult:accept", {"consult_id": consult["id"]})
    assert late["ok"] is False and late["error"]["code"] == "conflict"
    taken = await roster.call("consult:accept", {"consult_id": consult["id"]})
    assert taken["ok"] is True
    # The clinician is told who let the offer lapse ("BS. X chưa trả lời").
    assert [u["by"]["name"] for u in taken["consult"]["unanswered"]] == ["BS. Lê Minh Đức"]
    assert taken["consult"]["declines"] == [] and taken["consult"]["online_specialists"] is None
    kinds = [kind for kind, _ in await timeline_of(a, consult["id"])]
    assert kinds == ["requested", "consent", "offered", "expired", "offered", "accepted"]


async def test_a_declined_named_request_tells_the_requester_who_can_widen_it(two_instances, clients) -> None:
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    trauma = await clients(b, "quangninh.trauma")
    surgeon = await clients(a, "xanhpon.surgeon")
    trauma_id = (await trauma.next("session:state"))["user"]["id"]
    await surgeon.next("session:state")

    consult = await ask(clinician, specialist_id=trauma_id)
    assert consult["named_specialist"]["id"] == trauma_id
    assert (await trauma.next("consult:offer"))["consult"]["id"] == consult["id"]
    assert surgeon.queue("consult:offer").empty()  # named: nobody else
    ack = await trauma.call("consult:decline", {"consult_id": consult["id"], "reason": "đang mổ"})
    assert ack == {"ok": True}
    told = await until(clinician, "consult:updated", lambda p: p["consult"]["named_answer"] == "declined")
    assert told["consult"]["status"] == "queued"
    # The reason reaches the clinician; and how many specialists of the specialty are online to ask.
    assert [(d["by"]["id"], d["reason"]) for d in told["consult"]["declines"]] == [(trauma_id, "đang mổ")]
    assert told["consult"]["online_specialists"] == 2  # the surgeons at Xanh Pôn and in Quảng Ninh
    assert surgeon.queue("consult:offer").empty()  # waits for the requester's consent

    widened = await clinician.call("consult:widen", {"consult_id": consult["id"]})
    assert widened["ok"] is True and widened["consult"]["status"] == "offered"
    assert (await surgeon.next("consult:offer"))["consult"]["id"] == consult["id"]
    events = await timeline_of(a, consult["id"])
    assert ("declined", trauma_id) in events and ("widened", clinician_id(told)) in events


def clinician_id(update: dict[str, Any]) -> str:
    return str(update["consult"]["requester"]["id"])


async def test_queue_positions_follow_the_queue(two_instances, clients) -> None:
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    nurse = await clients(b, "bavi.nurse")
    routine = await ask(clinician, specialty="obstetrics")
    assert routine["status"] == "queued" and routine["queue_position"] == 1
    assert routine["online_specialists"] == 0  # the obstetrician at Xanh Pôn is not signed in
    later = await ask(nurse, specialty="obstetrics")
    assert later["queue_position"] == 2
    urgent = await ask(nurse, specialty="obstetrics", urgency="urgent")
    assert urgent["queue_position"] == 1  # urgent goes before routine
    moved = await until(clinician, "consult:updated", lambda p: p["consult"]["queue_position"] == 2)
    assert moved["consult"]["id"] == routine["id"]

    cancelled = await nurse.call("consult:cancel", {"consult_id": urgent["id"]})
    assert cancelled["ok"] and cancelled["consult"]["status"] == "cancelled"
    await until(clinician, "consult:updated", lambda p: p["consult"]["queue_position"] == 1)

    obgyn = await clients(b, "xanhpon.obgyn")  # comes online, available: gets the oldest request
    offer = await obgyn.next("consult:offer")
    assert offer["consult"]["id"] == routine["id"]
    await until(
        nurse, "consult:updated", lambda p: p["consult"]["id"] == later["id"] and p["consult"]["queue_position"] == 1
    )


async def test_cancel_while_offered_withdraws_the_offer(two_instances, clients) -> None:
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = await ask(clinician)
    await surgeon.next("consult:offer")
    assert (await clinician.call("consult:cancel", {"consult_id": consult["id"]}))["ok"] is True
    await until(surgeon, "consult:updated", status_is("cancelled"))
    late = await surgeon.call("consult:accept", {"consult_id": consult["id"]})
    assert late["error"]["code"] == "conflict"
    # The slot is free: the next request reaches the same specialist at once.
    nxt = await ask(clinician)
    assert (await surgeon.next("consult:offer"))["consult"]["id"] == nxt["id"]


async def test_offer_moves_on_when_the_specialists_socket_drops(start_instance: StartInstance, clients) -> None:
    a = await start_instance(RECONNECT_GRACE_S="0.5")
    b = await start_instance(RECONNECT_GRACE_S="0.5")
    clinician = await clients(a, "bavi.clinician")
    sister = await clients(a, "xanhpon.surgeon")
    roster = await clients(b, "quangninh.trauma")
    await sister.next("session:state")
    await roster.next("session:state")
    consult = await ask(clinician)
    await sister.next("consult:offer")
    await sister.close()  # the routine offer would last 30 s; the grace period is 0.5 s
    moved = await roster.next("consult:offer", within=5)
    assert moved["consult"]["id"] == consult["id"]


async def test_a_reconnecting_specialist_still_sees_the_offer(two_instances, clients) -> None:
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(a, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = await ask(clinician)
    await surgeon.next("consult:offer")
    await surgeon.close()
    again = await clients(b, "xanhpon.surgeon")
    state = await again.next("session:state")
    assert [o["consult"]["id"] for o in state["offers"]] == [consult["id"]]
    assert (await again.call("consult:accept", {"consult_id": consult["id"]}))["ok"] is True
    clinician_state = await (await clients(b, "bavi.clinician")).next("session:state")
    assert [(c["id"], c["status"]) for c in clinician_state["consults"]] == [(consult["id"], "active")]


async def test_who_may_do_what(instance: Instance, clients) -> None:
    clinician = await clients(instance, "bavi.clinician")
    nurse = await clients(instance, "bavi.nurse")
    surgeon = await clients(instance, "xanhpon.surgeon")
    await surgeon.next("session:state")
    refused = await surgeon.call("consult:request", request())
    assert refused["error"]["code"] == "forbidden"
    consult = await ask(clinician)
    assert (await clinician.call("consult:accept", {"consult_id": consult["id"]}))["error"]["code"] == "forbidden"
    assert (await nurse.call("consult:cancel", {"consult_id": consult["id"]}))["error"]["code"] == "forbidden"
    assert (await surgeon.call("consult:accept", {"consult_id": "nope"}))["error"]["code"] == "not_found"
    unknown = await clinician.call("consult:request", request(specialty="astrology"))
    assert unknown["error"]["code"] == "invalid" and "specialty" in unknown["error"]["message"]
    bad_named = await clinician.call("consult:request", request(specialist_id="nobody"))
    assert bad_named["error"]["code"] == "not_found"
    early_end = await nurse.call("consult:end", {"consult_id": consult["id"], "outcome": "transfer"})
    assert early_end["error"]["code"] == "forbidden"


async def test_roster_shows_specialists_with_live_presence(instance: Instance, clients) -> None:
    import aiohttp

    from tests.conftest import login

    surgeon = await clients(instance, "xanhpon.surgeon")
    await surgeon.next("session:state")
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{instance.url}/api/roster", params={"specialty": "surgery"}) as resp:
            body = await resp.json()
        assert resp.status == 200
        by_name = {s["hospital"]["id"]: s for s in body["specialists"]}
        assert set(by_name) == {"xanhpon", "qn-dkt"}
        assert by_name["xanhpon"]["presence"]["online"] is True
        assert by_name["qn-dkt"]["presence"]["online"] is False
        async with http.get(f"{instance.url}/api/roster", params={"specialty": "astrology"}) as resp:
            assert resp.status == 400
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{instance.url}/api/roster") as resp:
            assert resp.status == 401


async def test_a_specialty_nobody_practises_is_refused_at_once(instance: Instance, clients) -> None:
    """Nobody of the network practises paediatrics in the demo: the clinician is told now, not after a wait."""
    clinician = await clients(instance, "bavi.clinician")
    refused = await clinician.call("consult:request", request(specialty="pediatrics"))
    assert refused["ok"] is False and refused["error"]["code"] == "conflict"
    assert "pediatrics" in refused["error"]["message"] and "no specialist" in refused["error"]["message"]
    async with instance.services.db.session() as session:
        assert not (await session.scalars(select(Consult).where(Consult.specialty == "pediatrics"))).all()


async def test_online_specialists_follow_specialists_signing_in_and_out(instance: Instance, clients) -> None:
    clinician = await clients(instance, "bavi.clinician")
    waiting = await ask(clinician, specialty="obstetrics")
    assert waiting["online_specialists"] == 0
    obgyn = await clients(instance, "xanhpon.obgyn")
    came = await until(clinician, "consult:updated", lambda p: p["consult"]["online_specialists"] == 1)
    assert came["consult"]["id"] == waiting["id"]
    await obgyn.close()
    gone = await until(clinician, "consult:updated", lambda p: p["consult"]["online_specialists"] == 0, within=10)
    assert gone["consult"]["id"] == waiting["id"]
