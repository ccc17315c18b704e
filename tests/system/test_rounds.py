"""Ward rounds: scheduling and who may do what, the live round across two instances (one call,
the focus moving, notes and decisions on each patient's consult), reconnects, the starting notice,
and the statistics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from server.actions import rounds
from server.policy import rounds as round_policy
from server.records.consults import VIETNAM
from tests.conftest import CONSENT, Client, Instance, StartInstance, add_user, token_of, until

PATIENTS = [
    {"bed": "3", "ref": "BV-2026-201", "summary": "Viêm phổi, thở oxy 3 l/ph"},
    {"bed": "5", "ref": "BV-2026-202", "summary": "Sau mổ thoát vị bẹn ngày 2"},
    {"bed": "8", "ref": "BV-2026-203", "summary": "Đái tháo đường, loét bàn chân"},
]


async def http(
    instance: Instance, username: str | None, method: str, path: str, body: Any = None, **params: str
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {await token_of(instance, username)}"} if username else {}
    async with aiohttp.ClientSession(base_url=instance.url, headers=headers) as session:
        async with session.request(method, path, json=body, params=params or None) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


async def user_id(instance: Instance, username: str) -> str:
    status, body = await http(instance, username, "GET", "/api/me")
    assert status == 200, body
    return str(body["user"]["id"] if "user" in body else body["id"])


def schedule(lead_id: str, **changes: Any) -> dict[str, Any]:
    """A daily round at Ba Vì starting now (so it has a session today), ending in a week."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "title": "Đi buồng khoa Hồi sức",
        "hospital_id": "bavi-dgh",
        "ward": "Hồi sức tích cực",
        "starts_at": now.isoformat(),
        "duration_min": 60,
        "recurrence": "daily",
        "until": (now.astimezone(VIETNAM).date() + timedelta(days=7)).isoformat(),
        "lead_specialist_id": lead_id,
        "patients": PATIENTS,
        **changes,
    }


async def new_round(instance: Instance, username: str = "bavi.clinician", **changes: Any) -> dict[str, Any]:
    lead = await user_id(instance, "xanhpon.icu")
    status, body = await http(instance, username, "POST", "/api/rounds", schedule(lead, **changes))
    assert status == 201, body
    return dict(body["round"])


async def join(client: Client, round_id: str) -> dict[str, Any]:
    ack = await client.call("round:join", {"round_id": round_id})
    assert ack["ok"] is True, ack
    return dict(ack)


async def test_who_may_schedule_a_round(instance: Instance) -> None:
    lead = await user_id(instance, "xanhpon.icu")
    body = schedule(lead)
    # A clinician at Ba Vì for their own hospital, a specialist at Xanh Pôn for its sister hospital, an admin.
    for username in ("bavi.clinician", "xanhpon.surgeon", "admin"):
        status, answer = await http(instance, username, "POST", "/api/rounds", body)
        assert status == 201, (username, answer)
        created = answer["round"]
        assert created["hospital"]["id"] == "bavi-dgh" and created["lead_specialist"]["id"] == lead
        assert [p["bed"] for p in created["patients"]] == ["3", "5", "8"]
        assert all(p["consult_id"] is None for p in created["patients"])  # no session yet
        assert created["session"] is None and created["recurrence"] == "daily"
    # Not for another hospital, not by a specialist of a hospital that is not its sister, not a supervisor.
    for username in ("tienyen.clinician", "quangninh.trauma", "soyte.supervisor", "bavi.nurse"):
        status, answer = await http(instance, username, "POST", "/api/rounds", body)
        assert status == 403 and answer["error"]["code"] == "forbidden", (username, answer)
    surgeon = await user_id(instance, "xanhpon.surgeon")
    nurse = await user_id(instance, "bavi.nurse")
    for bad in (
        {"duration_min": 0},
        {"duration_min": "60"},
        {"starts_at": "9 giờ sáng"},
        {"recurrence": "monthly"},
        {"recurrence": None},  # an end date without a recurrence
        {"until": "2020-01-01"},
        {"lead_specialist_id": nurse},
        {"participant_ids": ["nobody"]},
        {"patients": [{"bed": "1"}]},
        {"colour": "blue"},
    ):
        status, answer = await http(instance, "bavi.clinician", "POST", "/api/rounds", {**body, **bad})
        assert status == 400 and answer["error"]["code"] == "invalid", (bad, answer)
    status, _ = await http(instance, "bavi.clinician", "POST", "/api/rounds", {**body, "hospital_id": "nowhere"})
    assert status == 404
    status, answer = await http(
        instance, "bavi.clinician", "POST", "/api/rounds", {**body, "participant_ids": [surgeon]}
    )
    assert status == 201 and [p["id"] for p in answer["round"]["participants"]] == [surgeon]


async def test_the_form_offers_each_hospitals_active_clinicians_to_invite(instance: Instance) -> None:
    database_url = instance.services.settings.database_url
    await add_user(database_url, "bavi.colleague", "clinician", "bavi-dgh")
    await add_user(database_url, "bavi.gone", "clinician", "bavi-dgh")
    colleague, gone = await user_id(instance, "bavi.colleague"), await user_id(instance, "bavi.gone")
    status, _ = await http(instance, "admin", "POST", f"/api/admin/users/{gone}/deactivate")
    assert status == 200
    status, body = await http(instance, "bavi.clinician", "GET", "/api/rounds/hospitals")
    assert status == 200 and [h["id"] for h in body["hospitals"]] == ["bavi-dgh"]
    # Ba Vì's clinicians only: not the deactivated one, not the nurse at Ba Vì's health centre.
    offered = {c["id"] for c in body["hospitals"][0]["clinicians"]}
    assert offered == {await user_id(instance, "bavi.clinician"), colleague}
    created = await new_round(instance, participant_ids=[colleague])
    assert [p["id"] for p in created["participants"]] == [colleague]


async def test_editing_cancelling_and_listing(instance: Instance) -> None:
    created = await new_round(instance, until=None)
    rid = created["id"]
    status, body = await http(instance, "xanhpon.surgeon", "PATCH", f"/api/rounds/{rid}", {"ward": "Nội"})
    assert status == 403  # neither lead, creator, district team nor admin
    status, body = await http(
        instance, "xanhpon.icu", "PATCH", f"/api/rounds/{rid}", {"ward": "Nội tổng hợp", "recurrence": "weekly"}
    )
    assert status == 200, body
    assert body["round"]["ward"] == "Nội tổng hợp" and body["round"]["recurrence"] == "weekly"
    assert body["round"]["version"] == created["version"] + 1
    status, body = await http(instance, "bavi.clinician", "PATCH", f"/api/rounds/{rid}", {"title": None})
    assert status == 400

    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=20)).isoformat()}
    status, body = await http(instance, "bavi.clinician", "GET", "/api/rounds", **window)
    assert status == 200 and [len(r["occurrences"]) for r in body["rounds"]] == [3]  # weekly, three weeks
    next_week = (now.astimezone(VIETNAM).date() + timedelta(days=7)).isoformat()
    status, body = await http(instance, "bavi.clinician", "POST", f"/api/rounds/{rid}/cancel", {"day": next_week})
    assert status == 200 and body["round"]["skipped"] == [next_week]
    status, body = await http(instance, "bavi.clinician", "GET", "/api/rounds", **window)
    assert [len(r["occurrences"]) for r in body["rounds"]] == [2]
    [cancelled_day] = body["rounds"][0]["cancelled"]
    assert datetime.fromisoformat(cancelled_day).astimezone(VIETNAM).date().isoformat() == next_week
    # A week whose only occurrence is cancelled still shows the round, marked.
    that_week = {"from": cancelled_day, "to": (datetime.fromisoformat(cancelled_day) + timedelta(days=1)).isoformat()}
    status, body = await http(instance, "bavi.clinician", "GET", "/api/rounds", **that_week)
    assert [(r["id"], r["occurrences"], r["cancelled"]) for r in body["rounds"]] == [(rid, [], [cancelled_day])]
    status, _ = await http(instance, "bavi.clinician", "POST", f"/api/rounds/{rid}/cancel", {"day": "2001-01-01"})
    assert status == 404

    # Who sees it: those taking part, supervisors within scope; not others.
    await add_user(instance.services.settings.database_url, "qn.supervisor", "supervisor", "qn-dkt")
    await add_user(instance.services.settings.database_url, "xanhpon.supervisor", "supervisor", "xanhpon")
    for username, sees in [
        ("xanhpon.icu", True),
        ("soyte.supervisor", True),
        ("xanhpon.supervisor", True),  # the lead's hospital
        ("admin", True),
        ("qn.supervisor", False),
        ("tienyen.clinician", False),
        ("xanhpon.surgeon", False),
    ]:
        status, body = await http(instance, username, "GET", "/api/rounds", **window)
        assert status == 200 and (rid in [r["id"] for r in body["rounds"]]) is sees, username
        status, body = await http(instance, username, "GET", f"/api/rounds/{rid}")
        assert status == (200 if sees else 403), username

    status, body = await http(instance, "bavi.clinician", "POST", f"/api/rounds/{rid}/cancel")
    assert status == 200 and body["round"]["cancelled_at"] and body["round"]["next_starts_at"] is None
    status, body = await http(instance, "bavi.clinician", "GET", "/api/rounds", **window)
    # Cancelled as a whole: every occurrence of the window is listed as cancelled, none takes place.
    assert [(r["id"], r["occurrences"], len(r["cancelled"])) for r in body["rounds"]] == [(rid, [], 3)]
    status, _ = await http(
        instance, "bavi.clinician", "GET", "/api/rounds", **{"from": "2025-01-01", "to": "2025-12-31"}
    )
    assert status == 400  # more than 92 days


async def test_who_may_edit_the_patient_list(instance: Instance) -> None:
    created = await new_round(instance, username="admin")
    rid = created["id"]
    path = f"/api/rounds/{rid}/patients"
    new = {"bed": "12", "ref": "BV-2026-204", "summary": "Suy tim"}
    for username in ("xanhpon.surgeon", "bavi.nurse", "soyte.supervisor", "admin", "tienyen.clinician"):
        status, body = await http(instance, username, "POST", path, new)
        assert status == 403, (username, body)
    status, body = await http(instance, "bavi.clinician", "POST", path, new)  # the district team
    assert status == 201, body
    patients = body["round"]["patients"]
    assert [p["bed"] for p in patients] == ["3", "5", "8", "12"]
    status, body = await http(instance, "xanhpon.icu", "PATCH", f"{path}/{patients[3]['id']}", {"bed": "12A"})
    assert status == 200 and body["round"]["patients"][3]["bed"] == "12A"  # the lead
    order = [patients[3]["id"], patients[0]["id"], patients[1]["id"], patients[2]["id"]]
    status, body = await http(instance, "bavi.clinician", "PUT", path, {"patient_ids": order})
    assert status == 200 and [p["id"] for p in body["round"]["patients"]] == order
    status, body = await http(instance, "bavi.clinician", "PUT", path, {"patient_ids": order[:2]})
    assert status == 400
    status, body = await http(instance, "bavi.clinician", "DELETE", f"{path}/{patients[1]['id']}")
    assert status == 200 and patients[1]["id"] not in [p["id"] for p in body["round"]["patients"]]
    status, body = await http(instance, "bavi.clinician", "DELETE", f"{path}/{patients[1]['id']}")
    assert status == 404


async def test_a_round_walked_through_across_two_instances(
    two_instances: tuple[Instance, Instance], clients: Any
) -> None:
    a, b = two_instances
    created = await new_round(a)
    rid = created["id"]
    clinician = await clients(a, "bavi.clinician")  # a clinician at Ba Vì
    lead = await clients(b, "xanhpon.icu")  # a specialist at Xanh Pôn, the lead
    state = await clinician.next("session:state")
    assert [r["round"]["id"] for r in state["rounds"]] == [rid]

    first = await join(clinician, rid)
    patients = first["round"]["patients"]
    assert first["round"]["session"]["status"] == "active" and first["peers"] == []
    assert all(p["consult_id"] and p["status"] == "active" for p in patients)
    second = await join(lead, rid)
    assert [p["peer_id"] for p in second["peers"]] == [first["peer_id"]] and second["peer_id"] != first["peer_id"]
    assert [p["consult_id"] for p in second["round"]["patients"]] == [p["consult_id"] for p in patients]
    joined = await clinician.next("round:peer-joined")
    assert joined == {**joined, "round_id": rid, "peer_id": second["peer_id"], "role": "lead", "rejoined": False}

    # One call: signaling carries round_id, across instances.
    offer = {"round_id": rid, "to": first["peer_id"], "data": {"type": "offer", "sdp": "v=0"}}
    assert await lead.call("rtc:signal", offer) == {"ok": True}
    relayed = await clinician.next("rtc:signal")
    assert relayed == {"round_id": rid, "from": second["peer_id"], "data": {"type": "offer", "sdp": "v=0"}}

    # Only the specialists focus; everyone in the call sees the focus move.
    refused = await clinician.call("round:focus", {"round_id": rid, "patient_id": patients[1]["id"]})
    assert refused["error"]["code"] == "forbidden"
    ack = await lead.call("round:focus", {"round_id": rid, "patient_id": patients[1]["id"]})
    assert ack["ok"] and ack["round"]["session"]["focus_patient_id"] == patients[1]["id"]
    moved = await until(
        clinician, "round:updated", lambda p: p["round"]["session"]["focus_patient_id"] == patients[1]["id"]
    )
    assert moved["round"]["id"] == rid
    bad = await lead.call("round:focus", {"round_id": rid, "patient_id": "ghost"})
    assert bad["error"]["code"] == "not_found"

    # Notes go to the focused patient's consult and reach the other instance.
    note = {"consult_id": patients[1]["consult_id"], "op_id": "r-1", "section": "examination", "text": "Vết mổ khô"}
    written = await clinician.call("note:add", note)
    assert written["ok"], written
    seen = await until(lead, "note:added", lambda p: p["note"]["id"] == written["note"]["id"])
    assert seen["consult_id"] == patients[1]["consult_id"]

    # A late joiner (an invited specialist at Xanh Pôn) gets the current focus and the notes.
    surgeon_id = await user_id(a, "xanhpon.surgeon")
    status, _ = await http(a, "bavi.clinician", "PATCH", f"/api/rounds/{rid}", {"participant_ids": [surgeon_id]})
    assert status == 200
    surgeon = await clients(a, "xanhpon.surgeon")
    late = await join(surgeon, rid)
    assert late["round"]["session"]["focus_patient_id"] == patients[1]["id"]
    assert [(n["consult_id"], n["text"]) for n in late["notes"]] == [(patients[1]["consult_id"], "Vết mổ khô")]
    assert sorted(p["peer_id"] for p in late["peers"]) == sorted([first["peer_id"], second["peer_id"]])
    assert (await surgeon.call("round:focus", {"round_id": rid, "patient_id": patients[2]["id"]}))["ok"]

    # The decision for a patient: consult:end on its consult; everyone in the call is told.
    ended = await lead.call("consult:end", {"consult_id": patients[1]["consult_id"], "outcome": "treated_locally"})
    assert ended["ok"] and ended["consult"]["kind"] == "round", ended
    told = await until(surgeon, "consult:updated", lambda p: p["consult"]["id"] == patients[1]["consult_id"])
    assert told["consult"]["status"] == "ended" and told["consult"]["outcome"] == "treated_locally"
    status, record = await http(b, "xanhpon.surgeon", "GET", f"/api/consults/{patients[1]['consult_id']}")
    assert status == 200 and record["consult"]["patient"]["ref"] == "BV-2026-202"

    # An invited specialist decides too, and stays in the call; a clinician at Ba Vì does not decide.
    third = {"consult_id": patients[2]["consult_id"], "outcome": "follow_up"}
    assert (await clinician.call("consult:end", third))["error"]["code"] == "forbidden"
    assert (await surgeon.call("consult:end", third))["ok"]
    still = await lead.call("rtc:signal", {**offer, "data": {"type": "offer", "sdp": "v=1"}})
    assert still == {"ok": True}

    # Ending the session: the lead; patients without a decision are closed, not reviewed.
    assert (await clinician.call("round:end", {"round_id": rid}))["error"]["code"] == "forbidden"
    done = await lead.call("round:end", {"round_id": rid})
    assert done["ok"] and done["round"]["session"]["status"] == "ended"
    assert [p["status"] for p in done["round"]["patients"]] == ["cancelled", "ended", "ended"]
    again = await clinician.call("round:join", {"round_id": rid})
    assert again["error"]["code"] == "conflict"

    status, figures = await http(a, "soyte.supervisor", "GET", "/api/stats")
    assert status == 200
    assert figures["totals"]["rounds_held"] == 1 and figures["totals"]["patients_reviewed"] == 2
    assert figures["totals"]["outcomes"]["treated_locally"] == 1 and figures["totals"]["outcomes"]["follow_up"] == 1


async def test_a_patient_added_during_the_round_gets_a_consult_at_once(instance: Instance, clients: Any) -> None:
    created = await new_round(instance)
    rid = created["id"]
    lead = await clients(instance, "xanhpon.icu")
    await join(lead, rid)
    status, body = await http(
        instance, "bavi.clinician", "POST", f"/api/rounds/{rid}/patients", {"bed": "9", "ref": "BV-2026-209"}
    )
    assert status == 201
    added = body["round"]["patients"][-1]
    assert added["consult_id"] and added["status"] == "active"
    pushed = await until(lead, "round:updated", lambda p: len(p["round"]["patients"]) == 4)
    assert pushed["round"]["patients"][-1]["consult_id"] == added["consult_id"]
    # Taken off the list during the round: its consult closes without a decision.
    status, body = await http(instance, "bavi.clinician", "DELETE", f"/api/rounds/{rid}/patients/{added['id']}")
    assert status == 200
    closed = await until(lead, "consult:updated", lambda p: p["consult"]["id"] == added["consult_id"])
    assert closed["consult"]["status"] == "cancelled"


async def test_who_takes_part_writes_on_round_patients(instance: Instance, clients: Any) -> None:
    created = await new_round(instance)
    rid = created["id"]
    clinician = await clients(instance, "bavi.clinician")
    patients = (await join(clinician, rid))["round"]["patients"]
    consult_id = patients[0]["consult_id"]
    outsiders = [await clients(instance, u) for u in ("xanhpon.surgeon", "bavi.nurse", "quangninh.trauma")]
    for outsider in outsiders:
        assert (await outsider.call("round:join", {"round_id": rid}))["error"]["code"] == "forbidden"
        note = {"consult_id": consult_id, "op_id": "x", "section": "plan", "text": "?"}
        assert (await outsider.call("note:add", note))["error"]["code"] == "forbidden"
        assert (await outsider.call("round:focus", {"round_id": rid, "patient_id": patients[0]["id"]}))["ok"] is False
    supervisor = await clients(instance, "soyte.supervisor")
    assert (await supervisor.call("note:list", {"consult_id": consult_id}))["ok"] is True
    note = {"consult_id": consult_id, "op_id": "s", "section": "plan", "text": "?"}
    assert (await supervisor.call("note:add", note))["error"]["code"] == "forbidden"
    assert (await clinician.call("round:join", {"round_id": "nope"}))["error"]["code"] == "not_found"
    assert (await clinician.call("round:join", {"round_id": rid, "extra": 1}))["error"]["code"] == "invalid"

    # No occurrence today: a weekly round that started yesterday.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    weekly = await new_round(instance, starts_at=yesterday, recurrence="weekly")
    assert (await clinician.call("round:join", {"round_id": weekly["id"]}))["error"]["code"] == "conflict"


async def test_a_dropped_peer_comes_back_to_the_round(start_instance: StartInstance, clients: Any) -> None:
    a = await start_instance(RECONNECT_GRACE_S="5")
    b = await start_instance(RECONNECT_GRACE_S="5")
    created = await new_round(a)
    rid = created["id"]
    clinician = await clients(a, "bavi.clinician")
    lead = await clients(b, "xanhpon.icu")
    first = await join(clinician, rid)
    await join(lead, rid)
    assert (await lead.call("round:focus", {"round_id": rid, "patient_id": first["round"]["patients"][2]["id"]}))["ok"]
    await clinician.close()  # the district network blips
    dropped = await lead.next("round:peer-reconnecting")
    assert dropped["peer_id"] == first["peer_id"] and dropped["round_id"] == rid

    back = await clients(b, "bavi.clinician")  # back, through the other instance
    state = await back.next("session:state")
    assert [r["round"]["session"]["status"] for r in state["rounds"]] == ["active"]
    again = await join(back, rid)
    assert again["peer_id"] == first["peer_id"]
    assert again["round"]["session"]["focus_patient_id"] == first["round"]["patients"][2]["id"]
    rejoined = await until(lead, "round:peer-joined", lambda p: p["rejoined"])
    assert rejoined["peer_id"] == first["peer_id"]


async def test_participants_online_are_told_when_a_round_starts(
    two_instances: tuple[Instance, Instance], clients: Any
) -> None:
    a, b = two_instances
    # Tomorrow at 09:00 in Vietnam: the instances' own clock never reaches it during the test.
    tomorrow = datetime.now(VIETNAM).date() + timedelta(days=1)
    nine = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 9, tzinfo=VIETNAM)
    created = await new_round(a, starts_at=nine.isoformat(), until=None)
    clinician = await clients(a, "bavi.clinician")
    lead = await clients(b, "xanhpon.icu")
    outsider = await clients(b, "xanhpon.surgeon")
    for client in (clinician, lead, outsider):
        await client.next("session:state")

    assert await rounds.announce_starting(a.services, nine - timedelta(minutes=1)) == []
    assert await rounds.announce_starting(a.services, nine + timedelta(minutes=1)) == [created["id"]]
    for client in (clinician, lead):
        notice = await client.next("round:starting")
        assert notice["round"]["id"] == created["id"] and notice["starts_at"] == nine.astimezone(UTC).isoformat()
    # Once, whichever instance's clock comes next.
    assert await rounds.announce_starting(b.services, nine + timedelta(minutes=2)) == []
    assert await rounds.announce_starting(a.services, nine + timedelta(minutes=10)) == []
    assert outsider.queue("round:starting").empty() and clinician.queue("round:starting").empty()
    # The next day's occurrence is announced in its turn.
    assert await rounds.announce_starting(b.services, nine + timedelta(days=1, minutes=1)) == [created["id"]]


async def test_a_forgotten_session_ends_on_its_own(instance: Instance, clients: Any) -> None:
    created = await new_round(instance)
    rid = created["id"]
    clinician = await clients(instance, "bavi.clinician")
    joined = await join(clinician, rid)
    now = datetime.now(UTC)
    later = now + timedelta(minutes=60) + round_policy.OVERRUN + timedelta(minutes=1)
    assert await rounds.end_overdue(instance.services, later) == []  # someone is still in the call
    assert (await clinician.call("round:leave", {"round_id": rid}))["ok"]
    assert await rounds.end_overdue(instance.services, now) == []  # not yet over
    assert await rounds.end_overdue(instance.services, later) == [rid]
    described = await rounds.describe(instance.services.db, rid)
    assert described["session"]["status"] == "ended"
    assert {p["status"] for p in described["patients"]} == {"cancelled"}
    assert joined["round"]["session"]["id"] == described["session"]["id"]


async def test_a_specialist_taken_off_a_round_leaves_its_call_and_notes_within_a_second(
    two_instances: tuple[Instance, Instance], clients: Any
) -> None:
    a, b = two_instances
    surgeon_id = await user_id(a, "xanhpon.surgeon")
    rid = (await new_round(a, participant_ids=[surgeon_id]))["id"]
    clinician = await clients(a, "bavi.clinician")
    lead = await clients(a, "xanhpon.icu")
    surgeon = await clients(b, "xanhpon.surgeon")  # invited; its socket on the other instance
    await surgeon.next("session:state")
    patients = (await join(clinician, rid))["round"]["patients"]
    await join(lead, rid)
    peer_id = (await join(surgeon, rid))["peer_id"]
    consult_id = patients[0]["consult_id"]
    note = {"consult_id": consult_id, "section": "plan"}
    written = await clinician.call("note:add", {**note, "op_id": "before", "text": "Thở oxy"})
    await until(surgeon, "note:added", lambda p: p["note"]["id"] == written["note"]["id"])

    # The district team takes the invitation back. What reached the surgeon before, while invited
    # (the session's start as the others joined), is put aside: only what comes after counts.
    for event in ("note:added", "round:updated", "rtc:signal"):
        while not surgeon.queue(event).empty():
            surgeon.queue(event).get_nowait()
    removed_at = asyncio.get_running_loop().time()
    status, _ = await http(a, "bavi.clinician", "PATCH", f"/api/rounds/{rid}", {"participant_ids": []})
    assert status == 200
    for other in (clinician, lead):
        await until(other, "round:peer-left", lambda p: p["peer_id"] == peer_id, within=1.0)
    state = await until(surgeon, "session:state", lambda s: rid not in [r["round"]["id"] for r in s["rounds"]], 1.0)
    assert state["user"]["id"] == surgeon_id
    assert asyncio.get_running_loop().time() - removed_at < 1.0

    # Its notes, its focus and its signals no longer reach the surgeon, whose socket stays open.
    written = await clinician.call("note:add", {**note, "op_id": "after", "text": "Hết sốt"})
    await until(lead, "note:added", lambda p: p["note"]["id"] == written["note"]["id"])
    assert (await lead.call("round:focus", {"round_id": rid, "patient_id": patients[1]["id"]}))["ok"]
    await until(clinician, "round:updated", lambda p: p["round"]["session"]["focus_patient_id"] == patients[1]["id"])
    await asyncio.sleep(0.3)
    for event in ("note:added", "round:updated", "rtc:signal"):
        assert surgeon.queue(event).empty(), (event, surgeon.queue(event).get_nowait())
    offer = {"round_id": rid, "to": peer_id, "data": {"type": "offer", "sdp": "v=0"}}
    assert (await lead.call("rtc:signal", offer))["error"]["code"] == "not_found"
    assert surgeon.sio.connected
    # What it asks is refused, as over HTTP.
    assert (await surgeon.call("round:join", {"round_id": rid}))["error"]["code"] == "forbidden"
    assert (await surgeon.call("note:list", {"consult_id": consult_id}))["error"]["code"] == "forbidden"
    assert (await http(b, "xanhpon.surgeon", "GET", f"/api/consults/{consult_id}"))[0] == 403


async def test_a_bare_date_is_that_day_in_vietnam(instance: Instance) -> None:
    """`/api/rounds?from=<date>` starts at that date's midnight in Vietnam, as `/api/stats` does:
    a round at 06:30 in Vietnam (23:30 UTC the day before) is in that day's list."""
    day = datetime.now(UTC).astimezone(VIETNAM).date() + timedelta(days=3)
    early = datetime.combine(day, datetime.min.time(), VIETNAM).replace(hour=6, minute=30)
    created = await new_round(instance, starts_at=early.isoformat(), recurrence=None, until=None)
    occurrence = early.astimezone(UTC).isoformat()
    for window in [{"from": day.isoformat()}, {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}]:
        status, body = await http(instance, "bavi.clinician", "GET", "/api/rounds", **window)
        assert status == 200, body
        assert body["from"] == datetime.combine(day, datetime.min.time(), VIETNAM).astimezone(UTC).isoformat()
        assert {r["id"]: r["occurrences"] for r in body["rounds"]}[created["id"]] == [occurrence], window
    # The day after starts after it.
    status, body = await http(instance, "bavi.clinician", "GET", "/api/rounds", **{"from": str(day + timedelta(1))})
    assert status == 200 and created["id"] not in [r["id"] for r in body["rounds"] if r["occurrences"]]


async def test_an_instant_with_no_utc_time_is_invalid_wherever_one_enters(instance: Instance) -> None:
    """0001-01-01T00:00+14:00 has no UTC time (converting it overflows): `invalid`, never a 500."""
    created = await new_round(instance)
    lead = await user_id(instance, "xanhpon.icu")
    bad = "0001-01-01T00:00+14:00"
    for username, method, path, body, params in [
        ("bavi.clinician", "GET", "/api/rounds", None, {"from": bad}),
        ("bavi.clinician", "GET", "/api/rounds", None, {"to": bad}),
        ("bavi.clinician", "POST", "/api/rounds", schedule(lead, starts_at=bad, until=None), {}),
        ("bavi.clinician", "PATCH", f"/api/rounds/{created['id']}", {"starts_at": bad}, {}),
        ("soyte.supervisor", "GET", "/api/stats", None, {"from": bad}),
        ("soyte.supervisor", "GET", "/api/consults", None, {"from": bad}),
        ("admin", "GET", "/api/admin/audit", None, {"to": bad}),
    ]:
        status, answer = await http(instance, username, method, path, body, **params)
        assert status == 400 and answer["error"]["code"] == "invalid", (method, path, params, answer)
        assert "between 2000-01-01 and 2100-12-31" in answer["error"]["message"], answer


async def test_a_specialist_in_a_rounds_call_is_busy_for_routine_offers_but_not_for_emergencies(
    instance: Instance, clients: Any
) -> None:
    """A specialist at Xanh Pôn leads a round: an urgent request waits for them, an emergency rings."""
    created = await new_round(instance)
    rid = created["id"]
    lead = await clients(instance, "xanhpon.icu")
    assert (await lead.next("session:state"))["presence"]["status"] == "available"
    clinician = await clients(instance, "bavi.clinician")
    await clinician.next("session:state")

    await join(lead, rid)
    busy = await until(lead, "presence:changed", lambda p: p["presence"]["status"] == "busy")
    assert busy["presence"]["online"] is True
    status, board = await http(instance, "admin", "GET", "/api/roster", specialty="icu")
    assert status == 200 and [s["presence"]["status"] for s in board["specialists"]] == ["busy"]

    ack = await clinician.call("consult:request", _icu("urgent", "in-round-1"))
    assert ack["ok"] is True and ack["consult"]["status"] == "queued", ack
    waiting = ack["consult"]
    assert lead.queue("consult:offer").empty()

    emergency = await clinician.call("consult:request", _icu("emergency", "in-round-2"))
    assert emergency["ok"] is True and emergency["consult"]["status"] == "offered", emergency
    assert (await lead.next("consult:offer"))["consult"]["id"] == emergency["consult"]["id"]
    assert (await clinician.call("consult:cancel", {"consult_id": emergency["consult"]["id"]}))["ok"]

    # Out of the round's call: free again, and offered what waited.
    assert (await lead.call("round:leave", {"round_id": rid}))["ok"]
    back = await until(lead, "presence:changed", lambda p: p["presence"]["status"] == "available")
    assert back["presence"]["online"] is True
    offered = await until(lead, "consult:offer", lambda p: p["consult"]["id"] == waiting["id"])
    assert offered["consult"]["urgency"] == "urgent"


def _icu(urgency: str, op_id: str) -> dict[str, Any]:
    patient = {"ref": "BV-0099", "summary": "Sốc"}
    return {"op_id": op_id, "specialty": "icu", "urgency": urgency, "patient": patient, "consent": CONSENT}
