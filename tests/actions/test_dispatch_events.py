"""The events of a consult's steps: made in the order they go out, and to whoever's screen shows
the consult when the step happened. The actions put them in their caller's list; the handlers
send it (`outbox.sending`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from server.actions import dispatch
from server.outbox import Event
from server.records import consents
from server.records.users import load_account
from tests.conftest import Client, Instance, until
from tests.system.test_consults import request
from tests.system.test_invitations import invite, user_id
from tests.system.test_rtc import active_consult, join

OpenClient = Callable[..., Awaitable[Client]]


async def test_a_request_lists_the_specialists_offer_before_the_requesters_update(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    """A clinician at Ba Vì asks while a surgeon at Xanh Pôn is free: the surgeon's screen rings
    first, the clinician's screen shows the request offered after."""
    a, b = two_instances
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    clinician = await load_account(a.services, await user_id(a, "bavi.clinician"))
    asked = request()
    events: list[Event] = []
    consult = await dispatch.request(
        a.services,
        events,
        clinician,
        op_id=asked["op_id"],
        specialty=asked["specialty"],
        urgency=asked["urgency"],
        patient=asked["patient"],
        specialist_id=None,
        consent=consents.Given(**asked["consent"]),
    )
    assert consult.status == "offered"
    assert [event.name for event in events] == ["consult:offer", "consult:updated"]
    assert events[1].payload["consult"]["status"] == "offered"
    assert surgeon.queue("consult:offer").empty()  # nothing sent: the caller sends the list


async def test_the_end_of_a_consult_reaches_whoever_was_in_its_call(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    """An intensivist at Xanh Pôn, invited into the call (on the other instance), sees the consult
    end although its call's room is closed before the update goes out."""
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    cid = consult["id"]
    icu_id = await user_id(a, "xanhpon.icu")
    assert (await invite(clinician, cid, icu_id))["ok"] is True
    icu = await clients(b, "xanhpon.icu")
    await join(icu, cid)

    ack = await surgeon.call("consult:end", {"consult_id": cid, "outcome": "treated_locally"})
    assert ack["ok"] is True, ack
    ended = await until(icu, "consult:updated", lambda m: m["consult"]["status"] == "ended")
    assert ended["consult"]["id"] == cid
