"""A user's second screen (another tab or device, open but not the one acting, and not in the
call) is also rebuilt from `session:state` when it reconnects; between reconnects it lives on
the events sent to the user. These tests check that it ends where a fresh snapshot is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.actions.verify import verify_action, watch
from tests.conftest import Client, Instance
from tests.system.test_rounds import new_round

OpenClient = Callable[..., Awaitable[Client]]


async def ok(client: Client, event: str, data: dict[str, Any]) -> dict[str, Any]:
    ack = await client.call(event, data)
    assert ack["ok"] is True, (event, ack)
    return dict(ack)


async def test_a_status_set_on_one_device_reaches_the_users_other_screens(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    """A specialist at Xanh Pôn sets `away` on the phone; the desktop's screen must say so too."""
    a, b = two_instances
    phone = await clients(a, "xanhpon.surgeon")
    await phone.next("session:state")
    desktop = await watch(b, "xanhpon.surgeon")
    outcome = await verify_action([desktop], lambda: ok(phone, "presence:set", {"status": "away"}))
    assert outcome.after[desktop.name]["presence"]["status"] == "away"


async def test_a_round_started_and_ended_reaches_the_screens_of_those_not_in_its_call(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    """The round on the lead's second screen (not in the call) follows the session."""
    a, b = two_instances
    rid = (await new_round(a))["id"]
    clinician = await clients(a, "bavi.clinician")
    lead = await clients(b, "xanhpon.icu")
    second = await watch(a, "xanhpon.icu")
    outcome = await verify_action([second], lambda: ok(clinician, "round:join", {"round_id": rid}))
    assert outcome.after[second.name]["rounds"][0]["round"]["session"]["status"] == "active"
    await ok(lead, "round:join", {"round_id": rid})
    outcome = await verify_action([second], lambda: ok(lead, "round:end", {"round_id": rid}))
    assert outcome.after[second.name]["rounds"][0]["round"]["session"]["status"] == "ended"
