"""`consult:result`: the requesting side reports back what became of the patient; the consultants are told."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from server.records import chain, consults
from server.records.models import Consult
from tests.conftest import Client, Instance, add_user
from tests.system.test_invitations import invite, user_id
from tests.system.test_record import audit_entries
from tests.system.test_rtc import active_consult


def report(consult_id: str, op_id: str, result: str, note: str = "") -> dict[str, Any]:
    return {"consult_id": consult_id, "op_id": op_id, "result": result, "note": note}


async def updated_with_result(client: Client, consult_id: str) -> dict[str, Any]:
    """The next `consult:updated` of this consult that carries a result."""
    while True:
        consult = (await client.next("consult:updated"))["consult"]
        if consult["id"] == consult_id and consult["result"] is not None:
            return dict(consult["result"])


async def test_the_requesting_side_reports_the_result_and_the_consultants_are_told(
    instance: Instance, clients, database_url: str
) -> None:
    await add_user(database_url, "bavi.colleague", "clinician", "bavi-dgh")
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    obgyn = await clients(instance, "xanhpon.obgyn")  # a specialist the surgeon calls in
    assert (await invite(surgeon, cid, await user_id(instance, "xanhpon.obgyn")))["ok"] is True

    early = await clinician.call("consult:result", report(cid, "r-0", "improving"))
    assert early["error"]["code"] == "conflict", early  # not before the consult ended
    ended = await surgeon.call("consult:end", {"consult_id": cid, "outcome": "treated_locally"})
    assert ended["ok"] and ended["consult"]["result"] is None, ended

    # The consultants cannot report it; a colleague at the requesting hospital can.
    refused = await surgeon.call("consult:result", report(cid, "r-1", "recovered"))
    assert refused["error"]["code"] == "forbidden", refused
    colleague = await clients(instance, "bavi.colleague")
    first = await colleague.call("consult:result", report(cid, "r-2", "transferred", "Chuyển Xanh Pôn hôm sau"))
    assert first["ok"], first
    assert first["consult"]["result"]["result"] == "transferred"
    assert first["consult"]["result"]["reported_by"]["id"] == await user_id(instance, "bavi.colleague")
    for consultant in (surgeon, obgyn):
        assert (await updated_with_result(consultant, cid))["note"] == "Chuyển Xanh Pôn hôm sau"

    # A later report replaces the shown one; both stay on the timeline; a resent op changes nothing.
    second = await clinician.call("consult:result", report(cid, "r-3", "improving", "Đỡ sốt"))
    assert second["ok"] and second["consult"]["result"]["result"] == "improving", second
    again = await clinician.call("consult:result", report(cid, "r-3", "improving", "Đỡ sốt"))
    assert again["ok"] and again["consult"]["version"] == second["consult"]["version"], again
    lines = [e for e in await consults.timeline(instance.services.db, cid) if e.kind == "result"]
    assert [(e.detail["result"], e.detail["note"]) for e in lines] == [
        ("transferred", "Chuyển Xanh Pôn hôm sau"),
        ("improving", "Đỡ sốt"),
    ]
    # Each report is chained (server/records/chain.py): its audit entry holds the digest of what
    # was reported, never the note's text; altering the kept result breaks the chain.
    audited = [e for e in await audit_entries(instance, "consult.result") if e.target_id == cid]
    assert len(audited) == 2 and all(e.detail.startswith("sha256=") for e in audited), audited
    assert not any("Đỡ sốt" in e.detail or "Xanh Pôn" in e.detail for e in audited)
    assert (await chain.verify(instance.services.db)).intact
    async with instance.services.db.session() as session, session.begin():
        await session.execute(update(Consult).where(Consult.id == cid).values(result_note="Khỏi hẳn"))
    report_after = await chain.verify(instance.services.db)
    assert report_after.problem is not None and f"result of consult {cid} was altered" in report_after.problem
    async with instance.services.db.session() as session, session.begin():
        await session.execute(update(Consult).where(Consult.id == cid).values(result_note="Đỡ sốt"))
    assert (await chain.verify(instance.services.db)).intact
    bad = await clinician.call("consult:result", report(cid, "r-4", "healed"))
    assert bad["error"]["code"] == "invalid", bad
