"""Caps on records: rounds per hospital, patients per round, notes and note bytes per consult,
attachment bytes per consult and per user a day; notes paged with a cursor; a lead of another
network asked before the round is theirs. Each refusal has its code, and leaves the user's earlier
work and every other user as they were."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from server.records.consults import VIETNAM
from tests.conftest import Client, Instance, StartInstance, token_of
from tests.system.test_consults import ask
from tests.system.test_rounds import PATIENTS, http, join, user_id

_ops = itertools.count()
PNG = b"\x89PNG\r\n\x1a\n"


async def accepted(clients: Any, instance: Instance, clinician: str, specialist: str, specialty: str) -> Any:
    """`(clinician client, specialist client, consult)`: an accepted consult between them."""
    asking = await clients(instance, clinician)
    answering = await clients(instance, specialist)
    await answering.next("session:state")
    consult = await ask(asking, specialty=specialty)
    await answering.next("consult:offer")
    ack = await answering.call("consult:accept", {"consult_id": consult["id"]})
    assert ack["ok"], ack
    return asking, answering, ack["consult"]


async def write(client: Client, consult_id: str, text: str, op_id: str | None = None) -> dict[str, Any]:
    payload = {"consult_id": consult_id, "op_id": op_id or f"cap-{next(_ops)}", "section": "plan", "text": text}
    return dict(await client.call("note:add", payload))


def code(ack: dict[str, Any]) -> str | None:
    return None if ack["ok"] else str(ack["error"]["code"])


async def test_notes_beyond_the_count_cap_are_too_large_and_nothing_else_changes(
    start_instance: StartInstance, clients: Any
) -> None:
    instance = await start_instance(NOTES_PER_CONSULT="5")
    clinician, surgeon, consult = await accepted(clients, instance, "bavi.clinician", "xanhpon.surgeon", "surgery")
    other_clinician, icu, other = await accepted(clients, instance, "bavi.nurse", "xanhpon.icu", "icu")
    written = [await write(clinician, consult["id"], f"ghi chú {i}", op_id=f"full-{i}") for i in range(5)]
    assert all(ack["ok"] for ack in written)
    beyond = await write(surgeon, consult["id"], "một ghi chú nữa")
    assert code(beyond) == "too_large" and "at most 5 notes" in beyond["error"]["message"], beyond
    amend = await clinician.call(
        "note:amend",
        {"consult_id": consult["id"], "op_id": "amend-full", "note_id": written[0]["note"]["id"], "text": "sửa"},
    )
    assert code(amend) == "too_large"  # an amendment is one more note
    # A retry of a note stored before the cap still answers with that note.
    again = await write(clinician, consult["id"], "ghi chú 2", op_id="full-2")
    assert again["ok"] and again["note"] == written[2]["note"]
    listed = await surgeon.call("note:list", {"consult_id": consult["id"]})
    assert [n["seq"] for n in listed["notes"]] == [1, 2, 3, 4, 5]
    # Other people's consults take notes as before.
    for client in (other_clinician, icu):
        assert (await write(client, other["id"], "Theo dõi"))["ok"]


async def test_note_text_beyond_the_byte_cap_is_too_large(start_instance: StartInstance, clients: Any) -> None:
    instance = await start_instance(NOTE_BYTES_PER_CONSULT="100000")
    clinician, surgeon, consult = await accepted(clients, instance, "bavi.clinician", "xanhpon.surgeon", "surgery")
    long = "ệ" * 20_000  # 20,000 characters, 60,000 bytes of UTF-8
    assert (await write(clinician, consult["id"], long))["ok"]
    refused = await write(surgeon, consult["id"], long)
    assert code(refused) == "too_large" and "bytes" in refused["error"]["message"], refused
    assert (await write(surgeon, consult["id"], "Chuyển tuyến"))["ok"]  # a short note still fits
    listed = await clinician.call("note:list", {"consult_id": consult["id"]})
    assert [n["text"] for n in listed["notes"]] == [long, "Chuyển tuyến"]
    assert [n["seq"] for n in listed["notes"]] == [1, 2]  # the refused note used up no seq


def page_bytes(notes: list[dict[str, Any]]) -> int:
    return sum(len(n["text"].encode()) for n in notes)


async def test_note_list_and_the_join_ack_page_every_note_exactly_once(
    start_instance: StartInstance, clients: Any
) -> None:
    instance = await start_instance(NOTE_PAGE_SIZE="7", NOTE_PAGE_BYTES="1024")
    clinician, surgeon, consult = await accepted(clients, instance, "bavi.clinician", "xanhpon.surgeon", "surgery")
    cid = consult["id"]
    sizes = [10, 300, 2000, 5, 400, 400, 400, 10] * 4  # one note alone is bigger than a page
    for i, size in enumerate(sizes):
        assert (await write(clinician, cid, f"{i:03d}" + "x" * size))["ok"]

    async def walk(first: dict[str, Any], limit: int | None = None) -> list[int]:
        seen, page, pages = [], first, 0
        while True:
            assert page["ok"], page
            assert 1 <= len(page["notes"]) <= min(limit or 7, 7)
            assert len(page["notes"]) == 1 or page_bytes(page["notes"]) <= 1024
            seen += [n["seq"] for n in page["notes"]]
            pages += 1
            if page["next_cursor"] is None:
                break
            ask_next: dict[str, Any] = {"consult_id": cid, "cursor": page["next_cursor"]}
            if limit:
                ask_next["limit"] = limit
            page = await surgeon.call("note:list", ask_next)
        assert pages > 1
        return seen

    everything = list(range(1, len(sizes) + 1))
    assert await walk(await surgeon.call("note:list", {"consult_id": cid})) == everything
    assert await walk(await surgeon.call("note:list", {"consult_id": cid, "limit": 3}), limit=3) == everything
    # Joining the call brings the first page and the cursor to the rest.
    joined = await surgeon.call("consult:join", {"consult_id": cid})
    assert joined["ok"] and joined["notes"][0]["seq"] == 1
    assert await walk(joined) == everything
    # `after_seq` still resumes where a reconnecting client left off, one page at a time.
    resumed = await surgeon.call("note:list", {"consult_id": cid, "after_seq": 30})
    assert [n["seq"] for n in resumed["notes"]] == [31, 32] and resumed["next_cursor"] is None
    for bad in ("nonsense", f"{cid}:x", "another-consult:3"):
        refused = await surgeon.call("note:list", {"consult_id": cid, "cursor": bad})
        assert code(refused) == "invalid", refused


def daily(lead_id: str, **changes: Any) -> dict[str, Any]:
    """A daily round at Ba Vì starting now, for a week (so it has a session today)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "title": "Đi buồng khoa Nội",
        "hospital_id": "bavi-dgh",
        "ward": "Nội tổng hợp",
        "starts_at": now.isoformat(),
        "duration_min": 60,
        "recurrence": "daily",
        "until": (now.astimezone(VIETNAM).date() + timedelta(days=7)).isoformat(),
        "lead_specialist_id": lead_id,
        "patients": PATIENTS,
        **changes,
    }


async def test_round_join_and_round_notes_page_every_patients_notes_exactly_once(
    start_instance: StartInstance, clients: Any
) -> None:
    instance = await start_instance(NOTE_PAGE_SIZE="4")
    status, body = await http(
        instance, "bavi.clinician", "POST", "/api/rounds", daily(await user_id(instance, "xanhpon.icu"))
    )
    assert status == 201, body
    round_id = body["round"]["id"]
    clinician = await clients(instance, "bavi.clinician")
    started = await join(clinician, round_id)
    assert started["notes"] == [] and started["next_cursor"] is None
    written = set()
    for patient in started["round"]["patients"]:
        for i in range(5):
            ack = await write(clinician, patient["consult_id"], f"{patient['bed']}: ghi chú {i}")
            written.add(ack["note"]["id"])
    lead = await clients(instance, "xanhpon.icu")
    page = await join(lead, round_id)
    seen: list[str] = []
    while True:
        assert len(page["notes"]) <= 4
        seen += [n["id"] for n in page["notes"]]
        if page["next_cursor"] is None:
            break
        page = await lead.call("round:notes", {"round_id": round_id, "cursor": page["next_cursor"]})
        assert page["ok"], page
    assert len(seen) == len(set(seen)) == 15 and set(seen) == written
    # Someone not taking part gets nothing.
    outsider = await clients(instance, "xanhpon.surgeon")
    refused = await outsider.call("round:notes", {"round_id": round_id, "cursor": "x:0"})
    assert code(refused) == "forbidden", refused


async def test_rounds_per_hospital_and_patients_per_round_are_capped(start_instance: StartInstance) -> None:
    instance = await start_instance(ROUNDS_PER_HOSPITAL="2", ROUND_MAX_PATIENTS="3")
    lead = await user_id(instance, "xanhpon.icu")
    too_many = await http(
        instance, "bavi.clinician", "POST", "/api/rounds", daily(lead, patients=[*PATIENTS, {"bed": "9", "ref": "X"}])
    )
    assert too_many[0] == 413 and too_many[1]["error"]["code"] == "too_large", too_many
    made = []
    for _ in range(2):
        status, body = await http(instance, "bavi.clinician", "POST", "/api/rounds", daily(lead))
        assert status == 201, body
        made.append(body["round"]["id"])
    status, body = await http(instance, "bavi.clinician", "POST", "/api/rounds", daily(lead))
    assert status == 413 and body["error"]["code"] == "too_large" and "at most 2 rounds" in body["error"]["message"]
    # A fourth patient on a full round is refused; the list stays as it was.
    status, body = await http(
        instance, "bavi.clinician", "POST", f"/api/rounds/{made[0]}/patients", {"bed": "9", "ref": "X"}
    )
    assert status == 413 and body["error"]["code"] == "too_large", body
    status, body = await http(instance, "bavi.clinician", "GET", f"/api/rounds/{made[0]}")
    assert [p["ref"] for p in body["round"]["patients"]] == [p["ref"] for p in PATIENTS]
    # Another hospital schedules as before; a cancelled round frees its place.
    tienyen = daily(await user_id(instance, "quangninh.trauma"), hospital_id="ttyt-tienyen")
    status, body = await http(instance, "tienyen.clinician", "POST", "/api/rounds", tienyen)
    assert status == 201, body
    status, _ = await http(instance, "bavi.clinician", "POST", f"/api/rounds/{made[1]}/cancel", {})
    assert status == 200
    status, body = await http(instance, "bavi.clinician", "POST", "/api/rounds", daily(lead))
    assert status == 201, body
    status, body = await http(instance, "bavi.clinician", "GET", "/api/rounds")
    assert {made[0], made[1]} <= {r["id"] for r in body["rounds"]}


async def upload(instance: Instance, username: str, consult_id: str, size: int) -> tuple[int, Any]:
    token = await token_of(instance, username)
    form = aiohttp.FormData()
    form.add_field("file", PNG + b"\x00" * (size - len(PNG)), filename="phim.png", content_type="image/png")
    async with aiohttp.ClientSession(base_url=instance.url, headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.post(f"/api/consults/{consult_id}/attachments", data=form) as resp:
            return resp.status, await resp.json()


async def test_attachment_bytes_per_consult_are_capped(start_instance: StartInstance, clients: Any) -> None:
    instance = await start_instance(ATTACHMENT_BYTES_PER_CONSULT="3000")
    _, _, consult = await accepted(clients, instance, "bavi.clinician", "xanhpon.surgeon", "surgery")
    _, _, other = await accepted(clients, instance, "bavi.clinician", "xanhpon.icu", "icu")
    for username in ("bavi.clinician", "xanhpon.surgeon"):
        status, body = await upload(instance, username, consult["id"], 1400)
        assert status == 201, body
    status, body = await upload(instance, "bavi.clinician", consult["id"], 1400)  # 4,200 > 3,000
    assert status == 413 and body["error"]["code"] == "too_large" and "200 are left" in body["error"]["message"], body
    status, body = await upload(instance, "xanhpon.surgeon", consult["id"], 200)  # what is left still fits
    assert status == 201, body
    status, body = await upload(instance, "xanhpon.surgeon", consult["id"], 100)
    assert status == 413, body
    for username in ("bavi.clinician", "xanhpon.icu"):  # the uploader's other consult, and its other party
        status, body = await upload(instance, username, other["id"], 1400)
        assert status == 201, body
    status, body = await http(instance, "bavi.clinician", "GET", f"/api/consults/{consult['id']}")
    assert [a["size"] for a in body["attachments"]] == [1400, 1400, 200]


async def test_attachment_bytes_per_user_a_day_are_rate_limited(start_instance: StartInstance, clients: Any) -> None:
    instance = await start_instance(ATTACHMENT_BYTES_PER_USER_DAY="2500")
    _, _, consult = await accepted(clients, instance, "bavi.clinician", "xanhpon.surgeon", "surgery")
    for _ in range(2):
        status, body = await upload(instance, "bavi.clinician", consult["id"], 1000)
        assert status == 201, body
    status, body = await upload(instance, "bavi.clinician", consult["id"], 1000)
    assert status == 429 and body["error"]["code"] == "rate_limited" and "24 hours" in body["error"]["message"]
    status, body = await upload(instance, "xanhpon.surgeon", consult["id"], 1000)  # someone else, same consult
    assert status == 201, body
    status, body = await http(instance, "bavi.clinician", "GET", f"/api/consults/{consult['id']}")
    assert len(body["attachments"]) == 3


async def test_a_lead_of_another_network_must_accept_before_the_round_is_theirs(
    start_instance: StartInstance, clients: Any
) -> None:
    instance = await start_instance()
    trauma_id = await user_id(instance, "quangninh.trauma")
    trauma = await clients(instance, "quangninh.trauma")
    await trauma.next("session:state")
    status, body = await http(instance, "bavi.clinician", "POST", "/api/rounds", daily(trauma_id))
    assert status == 201 and body["round"]["lead_status"] == "pending", body
    round_id = body["round"]["id"]
    asked = await trauma.next("round:lead-requested")
    assert asked["request"]["id"] == round_id and "patients" not in asked["request"]
    # Not theirs yet: not in their session state, their list, nor readable; it cannot start.
    again = await clients(instance, "quangninh.trauma")
    assert (await again.next("session:state"))["rounds"] == []
    status, listing = await http(instance, "quangninh.trauma", "GET", "/api/rounds")
    assert listing["rounds"] == [] and [r["id"] for r in listing["lead_requests"]] == [round_id]
    assert (await http(instance, "quangninh.trauma", "GET", f"/api/rounds/{round_id}"))[0] == 403
    clinician = await clients(instance, "bavi.clinician")
    refused = await clinician.call("round:join", {"round_id": round_id})
    assert code(refused) == "conflict" and "not accepted" in refused["error"]["message"], refused
    # Only the named specialist answers.
    status, body = await http(instance, "xanhpon.icu", "POST", f"/api/rounds/{round_id}/lead", {"accept": True})
    assert status == 403, body
    status, body = await http(instance, "quangninh.trauma", "POST", f"/api/rounds/{round_id}/lead", {"accept": True})
    assert status == 200 and body["round"]["lead_status"] == "accepted", body
    assert [
        r["round"]["id"] for r in (await (await clients(instance, "quangninh.trauma")).next("session:state"))["rounds"]
    ] == [round_id]
    status, listing = await http(instance, "quangninh.trauma", "GET", "/api/rounds")
    assert [r["id"] for r in listing["rounds"]] == [round_id] and listing["lead_requests"] == []
    assert (await join(clinician, round_id))["round"]["lead_status"] == "accepted"
    # Declined: it stays not theirs; the planners see it and may name them again, which asks again.
    status, body = await http(instance, "bavi.clinician", "POST", "/api/rounds", daily(trauma_id, title="Khoa Ngoại"))
    declined_id = body["round"]["id"]
    status, body = await http(
        instance, "quangninh.trauma", "POST", f"/api/rounds/{declined_id}/lead", {"accept": False}
    )
    assert status == 200 and body["round"]["lead_status"] == "declined", body
    status, body = await http(instance, "quangninh.trauma", "POST", f"/api/rounds/{declined_id}/lead", {"accept": True})
    assert status == 409 and body["error"]["code"] == "conflict", body
    status, body = await http(instance, "bavi.clinician", "GET", f"/api/rounds/{declined_id}")
    assert body["round"]["lead_status"] == "declined"
    status, body = await http(
        instance, "bavi.clinician", "PATCH", f"/api/rounds/{declined_id}", {"lead_specialist_id": trauma_id}
    )
    assert status == 200 and body["round"]["lead_status"] == "pending", body
    # A lead of the round's own network is the lead at once, as before.
    status, body = await http(
        instance, "bavi.clinician", "POST", "/api/rounds", daily(await user_id(instance, "xanhpon.surgeon"))
    )
    assert status == 201 and body["round"]["lead_status"] == "accepted", body
