"""Each consult action, checked the way a screen lives: the events a user's screen (and a
supervisor's board) receives, applied to its state before, give exactly the state a fresh
`session:state` (`monitor:snapshot`) shows after. Two instances on one Redis: the actors on
one, the screens watched from the other as well."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.actions.verify import verify_action, watch
from tests.conftest import Client, Instance, StartInstance
from tests.system.test_consults import request

OpenClient = Callable[..., Awaitable[Client]]


async def ok(client: Client, event: str, data: dict[str, Any]) -> dict[str, Any]:
    ack = await client.call(event, data)
    assert ack["ok"] is True, (event, ack)
    return dict(ack)


async def test_a_consult_from_request_to_end(two_instances: tuple[Instance, Instance], clients: OpenClient) -> None:
    """A clinician at Ba Vì asks, a specialist at Xanh Pôn is offered it and accepts, both join
    the call, write and amend a note, leave, and the consult ends; the Department of Health's
    board follows."""
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    board = await watch(a, "soyte.supervisor", "/monitor")
    asking, answering = await watch(b, "bavi.clinician"), await watch(a, "xanhpon.surgeon")
    screens = [asking, answering, board]
    made: dict[str, Any] = {}

    async def ask() -> None:
        made["consult"] = (await ok(clinician, "consult:request", request()))["consult"]

    outcome = await verify_action(screens, ask)
    consult_id = made["consult"]["id"]
    assert "consult:offer" in outcome.names(answering.name)
    assert outcome.after[answering.name]["offers"][0]["consult"]["id"] == consult_id
    assert outcome.after[asking.name]["consults"][0]["status"] == "offered"

    outcome = await verify_action(screens, lambda: ok(surgeon, "consult:accept", {"consult_id": consult_id}))
    assert "presence:changed" in outcome.names(answering.name)
    assert outcome.after[answering.name]["presence"]["status"] == "busy"
    assert outcome.after[answering.name]["offers"] == []
    assert [c["status"] for c in outcome.after[asking.name]["consults"]] == ["active"]

    # Joining and leaving the call change what the board shows, not the users' screens.
    async def both_join() -> None:
        await ok(clinician, "consult:join", {"consult_id": consult_id})
        await ok(surgeon, "consult:join", {"consult_id": consult_id})

    outcome = await verify_action(screens, both_join, unchanged=[asking, answering])
    session = next(s for s in outcome.after[board.name]["sessions"] if s["id"] == consult_id)
    assert len(session["participants"]) == 2

    # Notes: the screens that show the consult's notes.
    asking.notes_of.append(consult_id)
    answering.notes_of.append(consult_id)
    written: dict[str, Any] = {}

    async def add() -> None:
        note = {"consult_id": consult_id, "op_id": "note-1", "section": "assessment", "text": "Viêm ruột thừa cấp"}
        written["note"] = (await ok(surgeon, "note:add", note))["note"]

    outcome = await verify_action(screens, add, unchanged=[board])
    assert [n["text"] for n in outcome.after[asking.name]["notes"][consult_id]] == ["Viêm ruột thừa cấp"]

    async def amend() -> None:
        note_id = written["note"]["id"]
        change = {"consult_id": consult_id, "op_id": "note-2", "note_id": note_id, "text": "Viêm phúc mạc"}
        await ok(surgeon, "note:amend", change)

    outcome = await verify_action(screens, amend, unchanged=[board])
    line = outcome.after[answering.name]["notes"][consult_id]
    assert [n["text"] for n in line] == ["Viêm ruột thừa cấp", "Viêm phúc mạc"]
    assert line[1]["amends"] == written["note"]["id"]

    async def both_leave() -> None:
        await ok(clinician, "consult:leave", {"consult_id": consult_id})
        await ok(surgeon, "consult:leave", {"consult_id": consult_id})

    outcome = await verify_action(screens, both_leave, unchanged=[asking, answering])
    session = next(s for s in outcome.after[board.name]["sessions"] if s["id"] == consult_id)
    assert session["participants"] == []

    outcome = await verify_action(
        screens, lambda: ok(clinician, "consult:end", {"consult_id": consult_id, "outcome": "treated_locally"})
    )
    assert outcome.after[asking.name]["consults"] == [] and outcome.after[answering.name]["consults"] == []
    assert outcome.after[answering.name]["presence"]["status"] == "available"
    assert outcome.after[board.name]["sessions"] == []

    # The result reported back: the ended consult is on no screen's state, but the specialist is told.
    report = {"consult_id": consult_id, "op_id": "result-1", "result": "improving", "note": "Đỡ đau"}
    outcome = await verify_action(
        screens, lambda: ok(clinician, "consult:result", report), unchanged=[asking, answering, board]
    )
    assert "consult:updated" in outcome.names(answering.name)
    again = await ok(clinician, "consult:result", report)  # the same op: the same answer
    assert again["consult"]["result"]["result"] == "improving" and again["consult"]["result"]["note"] == "Đỡ đau"


async def test_a_queued_request_cancelled(two_instances: tuple[Instance, Instance], clients: OpenClient) -> None:
    """Nobody to offer it to: the request waits in the queue, on the screen and the board, until cancelled."""
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    board = await watch(b, "soyte.supervisor", "/monitor")
    asking = await watch(b, "bavi.clinician")
    screens = [asking, board]
    made: dict[str, Any] = {}

    async def ask() -> None:
        made["consult"] = (await ok(clinician, "consult:request", request(specialty="obstetrics")))["consult"]

    outcome = await verify_action(screens, ask)
    consult_id = made["consult"]["id"]
    assert [(c["status"], c["queue_position"]) for c in outcome.after[asking.name]["consults"]] == [("queued", 1)]
    assert [q["id"] for q in outcome.after[board.name]["queue"]] == [consult_id]

    outcome = await verify_action(screens, lambda: ok(clinician, "consult:cancel", {"consult_id": consult_id}))
    assert outcome.after[asking.name]["consults"] == [] and outcome.after[board.name]["queue"] == []


async def test_an_offered_request_cancelled(two_instances: tuple[Instance, Instance], clients: OpenClient) -> None:
    """Cancelled while offered: the specialist's offer card closes."""
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = (await ok(clinician, "consult:request", request()))["consult"]
    await surgeon.next("consult:offer")
    asking, answering = await watch(b, "bavi.clinician"), await watch(a, "xanhpon.surgeon")
    board = await watch(a, "soyte.supervisor", "/monitor")

    outcome = await verify_action(
        [asking, answering, board], lambda: ok(clinician, "consult:cancel", {"consult_id": consult["id"]})
    )
    assert outcome.before[answering.name]["offers"] and outcome.after[answering.name]["offers"] == []


async def test_a_named_request_declined(two_instances: tuple[Instance, Instance], clients: OpenClient) -> None:
    """A request named for one specialist, declined: the requester's screen says so, the offer closes."""
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    trauma = await clients(b, "quangninh.trauma")
    trauma_id = (await trauma.next("session:state"))["user"]["id"]
    asking, answering = await watch(b, "bavi.clinician"), await watch(a, "quangninh.trauma")
    board = await watch(a, "soyte.supervisor", "/monitor")
    made: dict[str, Any] = {}

    async def ask() -> None:
        made["consult"] = (await ok(clinician, "consult:request", request(specialist_id=trauma_id)))["consult"]

    await verify_action([asking, answering, board], ask)
    consult_id = made["consult"]["id"]
    outcome = await verify_action(
        [asking, answering, board],
        lambda: ok(trauma, "consult:decline", {"consult_id": consult_id, "reason": "đang mổ"}),
    )
    assert [c["named_answer"] for c in outcome.after[asking.name]["consults"]] == ["declined"]
    assert outcome.after[answering.name]["offers"] == []


async def test_an_unanswered_offer_expires(start_instance: StartInstance, clients: OpenClient) -> None:
    """Nobody answers: the offer closes, the specialist is away, the request waits again."""
    a = await start_instance(OFFER_TIMEOUT_ROUTINE_S="1.5")
    b = await start_instance(OFFER_TIMEOUT_ROUTINE_S="1.5")
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    asking, answering = await watch(b, "bavi.clinician"), await watch(a, "xanhpon.surgeon")
    board = await watch(a, "soyte.supervisor", "/monitor")

    async def ask_and_wait() -> None:
        await ok(clinician, "consult:request", request())
        await surgeon.next("consult:offer")
        await surgeon.next("presence:changed", within=10)  # away: the offer went unanswered

    outcome = await verify_action([asking, answering, board], ask_and_wait)
    assert outcome.after[answering.name]["presence"]["status"] == "away"
    assert outcome.after[answering.name]["offers"] == []
    assert [c["status"] for c in outcome.after[asking.name]["consults"]] == ["queued"]


async def test_a_declined_named_request_widened(two_instances: tuple[Instance, Instance], clients: OpenClient) -> None:
    """After the named specialist declines, the requester sends it to the whole pool: another
    specialist is offered it, and both screens and the board follow."""
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    trauma = await clients(b, "quangninh.trauma")
    surgeon = await clients(a, "xanhpon.surgeon")
    trauma_id = (await trauma.next("session:state"))["user"]["id"]
    await surgeon.next("session:state")
    consult = (await ok(clinician, "consult:request", request(specialist_id=trauma_id)))["consult"]
    await trauma.next("consult:offer")
    await ok(trauma, "consult:decline", {"consult_id": consult["id"]})
    asking, other = await watch(b, "bavi.clinician"), await watch(b, "xanhpon.surgeon")
    board = await watch(a, "soyte.supervisor", "/monitor")

    outcome = await verify_action(
        [asking, other, board], lambda: ok(clinician, "consult:widen", {"consult_id": consult["id"]})
    )
    assert [o["consult"]["id"] for o in outcome.after[other.name]["offers"]] == [consult["id"]]


async def test_an_invitation_changes_no_screen_state(
    two_instances: tuple[Instance, Instance], clients: OpenClient
) -> None:
    """Inviting a specialist to an active consult's call and withdrawing the invitation: the
    invited one's `session:state` holds only consults they asked for or answer, so it stays."""
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = (await ok(clinician, "consult:request", request()))["consult"]
    await surgeon.next("consult:offer")
    await ok(surgeon, "consult:accept", {"consult_id": consult["id"]})
    guest = await watch(a, "xanhpon.obgyn")  # another specialist at Xanh Pôn
    invite = {"consult_id": consult["id"], "user_id": (await guest.fresh())["user"]["id"]}
    outcome = await verify_action([guest], lambda: ok(clinician, "consult:invite", invite), unchanged=[guest])
    assert outcome.names(guest.name) == ["consult:invited"]
    outcome = await verify_action([guest], lambda: ok(clinician, "consult:uninvite", invite), unchanged=[guest])
    assert outcome.names(guest.name) == ["consult:uninvited"]
