"""The patient's identity and consent on a consult (contract v2), with two instances on one
Redis and one database: a request carries both; a routine or urgent one without consent is
refused, an emergency goes ahead with the reason recorded; consent is recorded afterwards and
withdrawn by the requesting side, once per op_id; acceptance needs it. The identity is never
logged and never on the supervisors' board."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update

from server.records import chain
from server.records.models import AuditEntry, ConsentRecord
from server.runtime.logs import JsonFormatter
from tests.conftest import CONSENT, Instance, add_user, login, until
from tests.system.test_consults import request, timeline_of

IDENTITY = {
    "ref": "BV-2041",
    "summary": "Đau bụng hố chậu phải",
    "name": "Nguyễn Văn Hùng",
    "birth_date": "1968-03-14",
    "sex": "M",
    "national_id": "001068004217",
    "insurance_id": "HT3010123456789",
    "address": "Thôn Đông, xã Tản Lĩnh, huyện Ba Vì, Hà Nội",
}
BY_DAUGHTER = {"given_by": "relative", "relation": "con gái", "method": "written", "scopes": ["consult"]}


class Captured(logging.Handler):
    """Every log line of the instances in this process, formatted as the service writes them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_request_carries_identity_and_consent_and_the_specialist_sees_them(two_instances, clients) -> None:
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")

    asked = await clinician.call("consult:request", request(patient=IDENTITY, consent=BY_DAUGHTER))
    assert asked["ok"] is True, asked
    consult = asked["consult"]
    assert consult["patient"]["sex"] == "male"  # the HL7 code, stored as the word
    assert consult["patient"]["national_id"] == "001068004217"
    assert consult["consent"]["given_by"] == "relative" and consult["consent"]["relation"] == "con gái"
    assert consult["consent"]["scopes"] == ["consult"] and consult["consent"]["method"] == "written"
    assert consult["consent"]["recorded_by"]["id"] == consult["requester"]["id"]
    assert consult["consent"]["recorded_at"] and consult["consent_waived_reason"] is None
    offer = await until(surgeon, "consult:offer", lambda o: o["consult"]["id"] == consult["id"])
    assert offer["consult"]["consent"]["scopes"] == ["consult"]
    assert offer["consult"]["patient"]["name"] == "Nguyễn Văn Hùng"
    accepted = await surgeon.call("consult:accept", {"consult_id": consult["id"]})
    assert accepted["ok"] is True and accepted["consult"]["status"] == "active", accepted
    assert [k for k, _ in await timeline_of(a, consult["id"])] == ["requested", "consent", "offered", "accepted"]

    # The record, read on the other instance, shows both (and the read is audited).
    token = await login(b.url, "xanhpon.surgeon")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{b.url}/api/consults/{consult['id']}", headers={"Authorization": f"Bearer {token}"}) as r:
            record = await r.json()
    assert record["consult"]["patient"]["insurance_id"] == "HT3010123456789"
    assert record["consult"]["consent"]["relation"] == "con gái"
    shown = [e for e in record["timeline"] if e["kind"] == "consent"]
    assert shown and shown[0]["detail"]["scopes"] == ["consult"] and shown[0]["detail"]["with_request"] is True


@pytest.mark.parametrize(
    ("patient", "consent", "wrong"),
    [
        ({"national_id": "00106800421"}, CONSENT, "national_id must be exactly 12 digits"),
        ({"national_id": "099068004217"}, CONSENT, "province code"),
        ({"national_id": "001068004217", "birth_date": "1986-03-14"}, CONSENT, "year of birth_date"),
        ({"insurance_id": "HT30101234567"}, CONSENT, "2 capital letters and 13 digits"),
        ({"birth_date": "2999-01-01"}, CONSENT, "between 1900-01-01 and today"),
        ({"sex": "X"}, CONSENT, "patient.sex"),
        ({"address": "x" * 301}, CONSENT, "patient.address"),
        ({}, {**CONSENT, "given_by": "relative"}, "relation is required"),
        ({}, {**CONSENT, "scopes": ["recording"]}, "comes with consent to the consult"),
        ({}, {**CONSENT, "scopes": []}, "must include the scope consult"),
        ({}, None, "must carry the patient's consent"),
    ],
)
async def test_wrong_identity_or_consent_is_refused_with_a_clear_message(
    instance: Instance, clients, patient: dict[str, Any], consent: dict[str, Any] | None, wrong: str
) -> None:
    clinician = await clients(instance, "bavi.clinician")
    payload = request(patient={"ref": "BV-1", **patient}, consent=consent)
    if consent is None:
        del payload["consent"]
    ack = await clinician.call("consult:request", payload)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid" and wrong in ack["error"]["message"], ack
    for value in patient.values():
        assert str(value) not in ack["error"]["message"]  # the message names the field, not the value


async def test_an_emergency_goes_ahead_with_the_reason_and_consent_follows(
    two_instances, clients, database_url
) -> None:
    """A clinician at Ba Vì asks for an emergency for a patient brought in unconscious with no
    relative: no consent, the reason instead. A specialist at Xanh Pôn accepts; when the wife
    arrives, a colleague at Ba Vì records her consent; a repeat of that op changes nothing."""
    a, b = two_instances
    await add_user(database_url, "bavi.colleague", "clinician", "bavi-dgh")
    clinician = await clients(a, "bavi.clinician")
    colleague = await clients(b, "bavi.colleague")
    nurse = await clients(b, "bavi.nurse")  # another hospital (Ba Vì medical centre)
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")

    no_reason = request(urgency="emergency")
    del no_reason["consent"]
    refused = await clinician.call("consult:request", no_reason)
    assert refused["error"]["code"] == "invalid" and "consent_waived_reason" in refused["error"]["message"]
    reason = "Người bệnh hôn mê, chưa liên lạc được người nhà"
    asked = await clinician.call("consult:request", {**no_reason, "consent_waived_reason": reason})
    assert asked["ok"] is True, asked
    consult = asked["consult"]
    assert consult["consent"] is None and consult["consent_waived_reason"] == reason
    await until(surgeon, "consult:offer", lambda o: o["consult"]["id"] == consult["id"])
    accepted = await surgeon.call("consult:accept", {"consult_id": consult["id"]})
    assert accepted["ok"] is True, accepted

    # Only the requesting side records consent.
    op = {"consult_id": consult["id"], "op_id": uuid.uuid4().hex, **BY_DAUGHTER, "relation": "vợ"}
    for outsider in (nurse, surgeon):
        ack = await outsider.call("consult:consent", op)
        assert ack["error"]["code"] == "forbidden", ack
    given = await colleague.call("consult:consent", op)
    assert given["ok"] is True and given["consult"]["consent"]["relation"] == "vợ", given
    assert given["consult"]["consent"]["recorded_by"]["name"] == "bavi.colleague"
    told = await until(surgeon, "consult:updated", lambda u: u["consult"]["consent"] is not None)
    assert told["consult"]["consent"]["scopes"] == ["consult"]
    await until(clinician, "consult:updated", lambda u: u["consult"]["consent"] is not None)
    again = await colleague.call("consult:consent", op)  # its answer was lost: sent again
    assert again == given

    # Withdrawn: scopes []. On the timeline, in the audit log.
    withdrawn = await clinician.call(
        "consult:consent", {**op, "op_id": uuid.uuid4().hex, "scopes": [], "note": "Người nhà rút lại"}
    )
    assert withdrawn["ok"] is True and withdrawn["consult"]["consent"]["scopes"] == [], withdrawn
    await until(surgeon, "consult:updated", lambda u: u["consult"]["consent"]["scopes"] == [])
    kinds = [k for k, _ in await timeline_of(a, consult["id"])]
    assert kinds == ["requested", "consent_waived", "offered", "accepted", "consent", "consent_withdrawn"]
    async with a.services.db.session() as session:
        audited = (
            await session.scalars(
                select(AuditEntry.detail).where(
                    AuditEntry.action == "consult.consent", AuditEntry.target_id == consult["id"]
                )
            )
        ).all()
    assert sorted(audited) == ["scopes=consult", "scopes=none"]  # one each, the repeat not again

    # Each consent recorded is chained (server/records/chain.py): one altered in the database is
    # named by verify-audit; put back, the trail is intact again.
    assert (await chain.verify(a.services.db)).intact
    async with a.services.db.session() as session, session.begin():
        first = await session.scalar(
            select(ConsentRecord).where(ConsentRecord.consult_id == consult["id"], ConsentRecord.relation == "vợ")
        )
        assert first is not None
        first.relation = "con trai"
    report = await chain.verify(a.services.db)
    assert report.problem is not None and f"consent {first.id} was altered" in report.problem, report
    async with a.services.db.session() as session, session.begin():
        await session.execute(update(ConsentRecord).where(ConsentRecord.id == first.id).values(relation="vợ"))
    assert (await chain.verify(a.services.db)).intact


async def test_a_routine_consult_whose_consent_was_withdrawn_cannot_be_accepted(two_instances, clients) -> None:
    a, b = two_instances
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = (await clinician.call("consult:request", request()))["consult"]
    await until(surgeon, "consult:offer", lambda o: o["consult"]["id"] == consult["id"])
    op = {"consult_id": consult["id"], "op_id": uuid.uuid4().hex, **CONSENT, "scopes": []}
    assert (await clinician.call("consult:consent", op))["ok"] is True
    told = await until(surgeon, "consult:updated", lambda u: (u["consult"]["consent"] or {}).get("scopes") == [])
    assert told["consult"]["status"] == "offered"  # still offered: the specialist sees why not to take it
    refused = await surgeon.call("consult:accept", {"consult_id": consult["id"]})
    assert refused["ok"] is False and refused["error"]["code"] == "conflict", refused
    assert "consent" in refused["error"]["message"] and "withdrawn" in refused["error"]["message"]
    # Given again: the same offer may be accepted.
    assert (await clinician.call("consult:consent", {**op, "op_id": uuid.uuid4().hex, "scopes": ["consult"]}))["ok"]
    accepted = await surgeon.call("consult:accept", {"consult_id": consult["id"]})
    assert accepted["ok"] is True and accepted["consult"]["status"] == "active", accepted


async def test_the_patients_identity_is_never_logged_nor_on_the_board(two_instances, clients, captured) -> None:
    a, b = two_instances
    supervisor = await clients(a, "soyte.supervisor", namespace="/monitor")
    await supervisor.next("monitor:snapshot")
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = (await clinician.call("consult:request", request(patient=IDENTITY, consent=BY_DAUGHTER)))["consult"]
    await until(surgeon, "consult:offer", lambda o: o["consult"]["id"] == consult["id"])
    assert (await surgeon.call("consult:accept", {"consult_id": consult["id"]}))["ok"]
    # A refused request and a failing one log what they log, still without the identity.
    wrong = request(patient={**IDENTITY, "birth_date": "1986-03-14"})
    assert (await clinician.call("consult:request", wrong))["ok"] is False
    board = await until(supervisor, "monitor:update", lambda u: any(s["id"] == consult["id"] for s in u["sessions"]))
    token = await login(a.url, "bavi.clinician")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{a.url}/api/consults/{consult['id']}", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
    assert captured.lines, "the instances logged nothing: the capture is not working"
    logged = "\n".join(captured.lines)
    shown = json.dumps(board, ensure_ascii=False)
    for field in ("name", "birth_date", "national_id", "insurance_id", "address"):
        escaped = json.dumps(IDENTITY[field])[1:-1]  # as a JSON text inside a log line would hold it
        assert IDENTITY[field] not in logged and escaped not in logged, f"the patient's {field} was logged"
        assert IDENTITY[field] not in shown, f"the patient's {field} is on the board"
