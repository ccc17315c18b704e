"""Presence checked as a screen lives: a specialist's status on the board, and on the
specialist's own screen when the server changes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.actions.verify import verify_action, watch
from tests.conftest import CONSENT, Client, Instance

OpenClient = Callable[..., Awaitable[Client]]


async def test_a_specialist_going_away_and_back(two_instances: tuple[Instance, Instance], clients: OpenClient) -> None:
    a, b = two_instances
    surgeon = await clients(a, "xanhpon.surgeon")
    await surgeon.next("session:state")
    board = await watch(b, "soyte.supervisor", "/monitor")

    async def set_status(status: str) -> None:
        ack = await surgeon.call("presence:set", {"status": status})
        assert ack["ok"] is True and ack["presence"]["status"] == status, ack

    outcome = await verify_action([board], lambda: set_status("away"))
    mine = next(p for p in outcome.after[board.name]["presence"] if p["user"]["name"] == "BS. Lê Minh Đức")
    assert mine["status"] == "away"
    outcome = await verify_action([board], lambda: set_status("available"))
    mine = next(p for p in outcome.after[board.name]["presence"] if p["user"]["name"] == "BS. Lê Minh Đức")
    assert mine["status"] == "available"


async def test_a_specialist_coming_online_and_going_offline(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    """Connecting and disconnecting the only device: the board follows."""
    a, b = two_instances
    board = await watch(b, "soyte.supervisor", "/monitor")
    opened: list[Client] = []

    async def come_online() -> None:
        opened.append(await clients(a, "xanhpon.surgeon"))
        await opened[0].next("session:state")

    outcome = await verify_action([board], come_online)
    mine = next(p for p in outcome.after[board.name]["presence"] if p["user"]["name"] == "BS. Lê Minh Đức")
    assert mine["online"] is True
    outcome = await verify_action([board], opened[0].close)
    mine = next(p for p in outcome.after[board.name]["presence"] if p["user"]["name"] == "BS. Lê Minh Đức")
    assert mine["online"] is False


async def test_a_screen_that_misses_an_event_is_caught(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    """The check itself: an event lost on the way makes the screen disagree with a fresh snapshot."""
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    asking = await watch(b, "bavi.clinician")

    async def ask_and_lose_the_update() -> None:
        ack = await clinician.call(
            "consult:request",
            {
                "op_id": "lost-1",
                "specialty": "obstetrics",
                "urgency": "routine",
                "patient": {"ref": "BV-1"},
                "consent": CONSENT,
            },
        )
        assert ack["ok"] is True, ack
        await asking.socket.next("consult:updated")
        asking.socket.log.clear()

    with pytest.raises(AssertionError, match="the events disagree with a fresh snapshot"):
        await verify_action([asking], ask_and_lose_the_update, within=1.0)
