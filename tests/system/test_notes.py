"""Case notes: durable before the ack, numbered without gaps across instances, append-only, audited."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from sqlalchemy import select

from server.records.models import AuditEntry, Database
from tests.conftest import CONSENT, Client, Instance, StartInstance, add_user
from tests.system.test_rtc import active_consult

_ops = itertools.count()
XSS = '<img src=x onerror="alert(1)"><script>alert("x")</script>&amp;'


def note(consult_id: str, text: str = "Mạch 90, HA 120/80", section: str = "examination", **extra: Any) -> dict:
    return {"consult_id": consult_id, "op_id": f"n-{next(_ops)}", "section": section, "text": text, **extra}


async def add(client: Client, payload: dict[str, Any]) -> dict[str, Any]:
    ack = await client.call("note:add", payload)
    assert ack["ok"] is True, ack
    return ack["note"]


async def test_concurrent_writers_on_two_instances_get_consecutive_seq(
    start_instance: StartInstance, clients, any_database_url: str
) -> None:
    a = await start_instance(database=any_database_url)
    b = await start_instance(database=any_database_url)
    await add_user(any_database_url, "bavi.doctor2", "clinician", "bavi-dgh")
    clinician, surgeon, consult = await active_consult(clients, a, b)
    colleague = await clients(b, "bavi.doctor2")  # the district team
    writers = [clinician, surgeon, colleague]

    async def write(client: Client, n: int) -> list[int]:
        return [(await add(client, note(consult["id"], f"ghi chú {n}-{i}")))["seq"] for i in range(10)]

    seqs = await asyncio.gather(*(write(client, n) for n, client in enumerate(writers)))
    assert sorted(itertools.chain(*seqs)) == list(range(1, 31))
    listed = await surgeon.call("note:list", {"consult_id": consult["id"]})
    assert [n["seq"] for n in listed["notes"]] == list(range(1, 31))


async def test_a_replayed_op_returns_the_original_note(two_instances, clients) -> None:
    a, b = two_instances
    clinician, _, consult = await active_consult(clients, a, b)
    payload = note(consult["id"])
    first = await add(clinician, payload)
    again = await add(await clients(b, "bavi.clinician"), payload)  # the retry lands on the other instance
    assert again == first
    assert [n["seq"] for n in (await clinician.call("note:list", {"consult_id": consult["id"]}))["notes"]] == [1]
    assert (await add(clinician, note(consult["id"])))["seq"] == 2  # no seq was used up by the replay


async def test_notes_reach_the_others_and_a_reconnecting_client_gets_what_it_missed(two_instances, clients) -> None:
    a, b = two_instances
    clinician, surgeon, consult = await active_consult(clients, a, b)
    first = await add(clinician, note(consult["id"], section="history"))
    added = await surgeon.next("note:added")
    assert added == {"consult_id": consult["id"], "note": first}
    await surgeon.close()
    missed = [await add(clinician, note(consult["id"], f"trong lúc mất mạng {i}")) for i in range(3)]
    back = await clients(b, "xanhpon.surgeon")
    listed = await back.call("note:list", {"consult_id": consult["id"], "after_seq": first["seq"]})
    assert listed["notes"] == missed


async def test_amending_appends_and_keeps_history(instance: Instance, clients) -> None:
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    original = await add(surgeon, note(consult["id"], "Chẩn đoán: viêm ruột thừa", section="assessment"))
    ack = await surgeon.call(
        "note:amend",
        {"consult_id": consult["id"], "op_id": "amend-1", "note_id": original["id"], "text": "Viêm ruột thừa cấp"},
    )
    assert ack["ok"] is True
    amended = ack["note"]
    assert amended["amends"] == original["id"] and amended["section"] == "assessment" and amended["seq"] == 2
    notes = (await clinician.call("note:list", {"consult_id": consult["id"]}))["notes"]
    assert [n["text"] for n in notes] == ["Chẩn đoán: viêm ruột thừa", "Viêm ruột thừa cấp"]  # nothing changed in place
    other = await clinician.call(
        "note:amend", {"consult_id": consult["id"], "op_id": "amend-2", "note_id": "nope", "text": "x"}
    )
    assert other["error"]["code"] == "not_found"


async def amend(client: Client, consult_id: str, note_id: str, text: str) -> dict[str, Any]:
    return await client.call(
        "note:amend", {"consult_id": consult_id, "op_id": f"a-{next(_ops)}", "note_id": note_id, "text": text}
    )


async def test_only_the_author_amends_a_note(instance: Instance, clients) -> None:
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    theirs = await add(surgeon, note(consult["id"], "Chẩn đoán: viêm ruột thừa", section="assessment"))
    refused = await amend(clinician, consult["id"], theirs["id"], "Chẩn đoán: viêm túi mật")
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden", refused
    assert "author" in refused["error"]["message"]
    listed = (await surgeon.call("note:list", {"consult_id": consult["id"]}))["notes"]
    assert [n["text"] for n in listed] == ["Chẩn đoán: viêm ruột thừa"]  # nothing stored, no seq used
    assert (await add(clinician, note(consult["id"])))["seq"] == 2
    assert (await amend(surgeon, consult["id"], theirs["id"], "Viêm ruột thừa cấp"))["ok"] is True


async def test_only_the_current_version_is_amended(instance: Instance, clients) -> None:
    _, surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    first = await add(surgeon, note(cid, "Viêm ruột thừa", section="assessment"))
    second = await amend(surgeon, cid, first["id"], "Viêm ruột thừa cấp")
    assert second["ok"] is True
    stale = await amend(surgeon, cid, first["id"], "Viêm ruột thừa mạn")
    assert stale["ok"] is False and stale["error"]["code"] == "conflict", stale
    assert "current version" in stale["error"]["message"]
    third = await amend(surgeon, cid, second["note"]["id"], "Viêm ruột thừa cấp, chưa vỡ")
    assert third["ok"] is True and third["note"]["amends"] == second["note"]["id"]
    assert third["note"]["section"] == "assessment"
    listed = (await surgeon.call("note:list", {"consult_id": cid}))["notes"]
    assert [n["seq"] for n in listed] == [1, 2, 3]


async def test_two_amendments_of_one_version_on_two_instances_one_wins(
    start_instance: StartInstance, clients, any_database_url: str
) -> None:
    a = await start_instance(database=any_database_url)
    b = await start_instance(database=any_database_url)
    _, surgeon_b, consult = await active_consult(clients, a, b)
    surgeon_a = await clients(a, "xanhpon.surgeon")  # the same specialist on a second device
    cid = consult["id"]
    original = await add(surgeon_b, note(cid, "Theo dõi", section="plan"))
    for round_ in range(5):
        acks = await asyncio.gather(
            amend(surgeon_a, cid, original["id"], f"Mổ cấp cứu {round_}"),
            amend(surgeon_b, cid, original["id"], f"Mổ phiên {round_}"),
        )
        assert sorted(ack["ok"] for ack in acks) == [False, True], acks
        assert next(ack for ack in acks if not ack["ok"])["error"]["code"] == "conflict"
        original = next(ack for ack in acks if ack["ok"])["note"]
    listed = (await surgeon_a.call("note:list", {"consult_id": cid}))["notes"]
    assert [n["seq"] for n in listed] == list(range(1, 7))  # one line of versions, no fork, no gap
    assert all(later["amends"] == earlier["id"] for earlier, later in itertools.pairwise(listed))


async def test_text_is_kept_as_inert_text(instance: Instance, clients) -> None:
    clinician, _, consult = await active_consult(clients, instance, instance)
    stored = await add(clinician, note(consult["id"], XSS))
    assert stored["text"] == XSS
    listed = (await clinician.call("note:list", {"consult_id": consult["id"]}))["notes"]
    assert listed[0]["text"] == XSS


async def test_who_may_read_and_write_notes(instance: Instance, clients) -> None:
    clinician, _surgeon, consult = await active_consult(clients, instance, instance)
    await add(clinician, note(consult["id"]))
    cases = {
        # login: (may write, may read)
        "bavi.clinician": (True, True),
        "xanhpon.surgeon": (True, True),
        "bavi.nurse": (False, False),  # another hospital
        "xanhpon.icu": (False, False),  # another specialist
        "soyte.supervisor": (False, True),
        "admin": (False, False),
    }
    for username, (may_write, may_read) in cases.items():
        client = await clients(instance, username)
        wrote = await client.call("note:add", note(consult["id"]))
        assert wrote["ok"] is may_write, (username, wrote)
        if not may_write:
            assert wrote["error"]["code"] == "forbidden"
        read = await client.call("note:list", {"consult_id": consult["id"]})
        assert read["ok"] is may_read, (username, read)


async def test_reads_are_audited_without_the_text(instance: Instance, clients) -> None:
    clinician, _, consult = await active_consult(clients, instance, instance)
    await add(clinician, note(consult["id"], "bí mật lâm sàng"))
    supervisor = await clients(instance, "soyte.supervisor")
    assert (await supervisor.call("note:list", {"consult_id": consult["id"]}))["ok"] is True
    db: Database = instance.services.db
    async with db.session() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.target_id == consult["id"]))).all()
    assert {e.action for e in entries} == {"notes.list"}
    assert all("bí mật" not in (e.detail or "") for e in entries)
    assert {e.address for e in entries} == {"127.0.0.1"}


async def test_bad_notes_are_refused_clearly(instance: Instance, clients) -> None:
    clinician, _, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    for payload, code in [
        (note(cid, section="gossip"), "invalid"),
        (note(cid, text=""), "invalid"),
        (note(cid, text=5), "invalid"),
        (note(cid, text="x" * 20_001), "too_large"),
        ({"consult_id": cid, "section": "plan", "text": "x"}, "invalid"),
        (note("nope"), "not_found"),
    ]:
        ack = await clinician.call("note:add", payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (payload.get("text", "")[:20], ack)
    queued = await clinician.call(
        "consult:request",
        {
            "op_id": "q1",
            "specialty": "obstetrics",
            "urgency": "routine",
            "patient": {"ref": "BV-1"},
            "consent": CONSENT,
        },
    )
    early = await clinician.call("note:add", note(queued["consult"]["id"]))
    assert early["error"]["code"] == "conflict"
