"""A ward round's listed patient carries the patient's identity and consent, checked by the same
rules as a consult request; each consult a session opens for them starts with both (the consent
on its timeline and in the chained audit), a change made during the session reaches that
consult, and its minutes show them; none of it is logged."""

from __future__ import annotations

import json
from typing import Any

from server.records import chain
from tests.conftest import Instance
from tests.system.test_consent import BY_DAUGHTER, IDENTITY, captured  # noqa: F401 (a fixture)
from tests.system.test_minutes_identity import minutes_of
from tests.system.test_rounds import PATIENTS, http, join, new_round, schedule, user_id

LISTED = {
    **{k: v for k, v in IDENTITY.items() if k not in ("ref", "summary")},
    "bed": "12",
    "ref": "BV-2026-212",
    "summary": "Viêm phổi, thở oxy",
    "consent": {**BY_DAUGHTER, "scopes": ["consult", "recording"]},
}


async def test_a_listed_patients_identity_and_consent_reach_their_consult_and_its_minutes(
    instance: Instance,
    clients: Any,
    captured,  # noqa: F811
) -> None:
    # Refused as a consult request would be: a citizen ID that disagrees with the birth date, a
    # relative without relation, an unknown scope.
    lead_id = await user_id(instance, "xanhpon.icu")
    for bad in (
        {"birth_date": "1986-03-14"},
        {"consent": {"given_by": "relative", "method": "verbal", "scopes": ["consult"]}},
        {"consent": {**BY_DAUGHTER, "scopes": ["video"]}},
        {"national_id": "12345"},
    ):
        wrong = schedule(lead_id, patients=[{**LISTED, **bad}])
        status, body = await http(instance, "bavi.clinician", "POST", "/api/rounds", wrong)
        assert status == 400 and body["error"]["code"] == "invalid", (bad, body)

    created = await new_round(instance, patients=[*PATIENTS, LISTED])
    rid, listed = created["id"], created["patients"][-1]
    assert listed["identity"]["national_id"] == "001068004217" and listed["identity"]["sex"] == "male"
    assert (
        listed["consent"]["relation"] == "con gái" and listed["consent"]["recorded_by"]["name"] == "BS. Nguyễn Văn Hùng"
    )
    assert "identity" in created["patients"][0] and created["patients"][0]["consent"] is None

    lead = await clients(instance, "xanhpon.icu")
    joined = await join(lead, rid)
    consult_id = next(p for p in joined["round"]["patients"] if p["id"] == listed["id"])["consult_id"]
    status, record = await http(instance, "bavi.clinician", "GET", f"/api/consults/{consult_id}")
    assert status == 200
    consult = record["consult"]
    assert consult["patient"]["name"] == IDENTITY["name"] and consult["patient"]["bed"] == "12"
    assert consult["consent"]["scopes"] == ["consult", "recording"]
    assert consult["consent"]["recorded_at"] == listed["consent"]["recorded_at"]  # as it was given
    assert "consent" in [line["kind"] for line in record["timeline"]]

    # The lead edits the list but records no consent for a patient the district team presented.
    withdrawn = {"consent": {**BY_DAUGHTER, "scopes": []}}
    path = f"/api/rounds/{rid}/patients/{listed['id']}"
    status, body = await http(instance, "xanhpon.icu", "PATCH", path, withdrawn)
    assert status == 403, body
    status, body = await http(instance, "bavi.clinician", "PATCH", path, {"birth_date": "1986-03-14"})
    assert status == 400 and "national_id" in body["error"]["message"]  # checked against the kept ID
    # During the session the district team withdraws consent and corrects the address: the list
    # and the day's consult both follow.
    address = "Thôn Mít, xã Tản Lĩnh, huyện Ba Vì, Hà Nội"
    status, body = await http(instance, "bavi.clinician", "PATCH", path, {**withdrawn, "address": address})
    assert status == 200, body
    kept = next(p for p in body["round"]["patients"] if p["id"] == listed["id"])
    assert kept["consent"]["scopes"] == [] and kept["identity"]["address"] == address
    assert kept["identity"]["name"] == IDENTITY["name"]  # the fields not given are kept
    status, record = await http(instance, "bavi.clinician", "GET", f"/api/consults/{consult_id}")
    assert record["consult"]["consent"]["scopes"] == [] and record["consult"]["patient"]["address"] == address

    status, page, pdf = await minutes_of(instance, "bavi.clinician", consult_id)
    assert status == 200
    for text in (page, pdf):
        for shown in (f"Họ và tên: {IDENTITY['name']}", "001068004217", address, "Đã rút lại đồng ý"):
            assert shown in text, shown
    assert (await chain.verify(instance.services.db)).intact
    logged = "\n".join(captured.lines)
    for value in (IDENTITY["name"], IDENTITY["national_id"], IDENTITY["insurance_id"], IDENTITY["address"], address):
        assert value not in logged and json.dumps(value)[1:-1] not in logged, "patient data was logged"
