"""A ward round's actions checked as a screen lives: the clinician at Ba Vì in the round's call,
and the Department of Health's board, apply the events they receive and must equal a fresh
snapshot: the focus moving, a note on a patient, a patient's decision, the session's end."""

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


async def test_a_ward_round_from_join_to_end(two_instances: tuple[Instance, Instance], clients: OpenClient) -> None:
    a, b = two_instances
    rid = (await new_round(a))["id"]
    lead = await clients(b, "xanhpon.icu")  # a specialist at Xanh Pôn leads
    team = await watch(a, "bavi.clinician")  # a clinician at Ba Vì, in the call on this screen
    board = await watch(b, "soyte.supervisor", "/monitor")
    screens = [team, board]

    # The clinician's join starts today's session: the round on their screen and the board change.
    # The others are sent `round:updated`; the clinician's own screen reads the join's ack.
    joined: dict[str, Any] = {}

    async def start() -> None:
        joined.update(await ok(team.socket, "round:join", {"round_id": rid}))
        team.learn("round:updated", {"round": joined["round"]})

    outcome = await verify_action(screens, start)
    patients = joined["round"]["patients"]
    assert outcome.after[team.name]["rounds"][0]["round"]["session"]["status"] == "active"
    assert any(s["kind"] == "round" for s in outcome.after[board.name]["sessions"])

    # The lead joins: the board's session has two in its call.
    outcome = await verify_action(screens, lambda: ok(lead, "round:join", {"round_id": rid}), unchanged=[team])
    session = next(s for s in outcome.after[board.name]["sessions"] if s["kind"] == "round")
    assert len(session["participants"]) == 2

    # The focus moves: the round on the clinician's screen, not the board.
    focus = {"round_id": rid, "patient_id": patients[1]["id"]}
    outcome = await verify_action(screens, lambda: ok(lead, "round:focus", focus), unchanged=[board])
    assert outcome.after[team.name]["rounds"][0]["round"]["session"]["focus_patient_id"] == patients[1]["id"]

    # A note on the focused patient's consult.
    consult_id = patients[1]["consult_id"]
    team.notes_of.append(consult_id)
    note = {"consult_id": consult_id, "op_id": "round-note-1", "section": "examination", "text": "Vết mổ khô"}
    outcome = await verify_action(screens, lambda: ok(lead, "note:add", note), unchanged=[board])
    assert [n["text"] for n in outcome.after[team.name]["notes"][consult_id]] == ["Vết mổ khô"]

    # The patient's decision: the board counts it, the round on the clinician's screen shows it.
    decision = {"consult_id": consult_id, "outcome": "treated_locally"}
    outcome = await verify_action(screens, lambda: ok(lead, "consult:end", decision))
    session = next(s for s in outcome.after[board.name]["sessions"] if s["kind"] == "round")
    assert session["round"]["decided"] == 1

    # The lead leaves the call, then ends the session.
    outcome = await verify_action(screens, lambda: ok(lead, "round:leave", {"round_id": rid}), unchanged=[team])
    outcome = await verify_action(screens, lambda: ok(lead, "round:end", {"round_id": rid}))
    assert outcome.after[team.name]["rounds"][0]["round"]["session"]["status"] == "ended"
    assert not any(s["kind"] == "round" for s in outcome.after[board.name]["sessions"])
