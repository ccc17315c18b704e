"""The FHIR R4 export of a consult (`GET /api/consults/{id}/fhir`): every resource valid, every
reference resolving within the Bundle, no empty string anywhere; the patient's identity, the
consent, the conclusion, the result reported back and the attachments in it; a cancelled
consult exports valid too."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from server.actions import fhir
from tests.conftest import Instance, StartInstance
from tests.fhir_schema import schema_errors
from tests.system import pki as test_pki
from tests.system.test_consent import BY_DAUGHTER, IDENTITY
from tests.system.test_consults import ask
from tests.system.test_record import PNG, http
from tests.system.test_signatures import Http, ended, with_keys

FILENAME = "phim-x-quang-nguc.png"
CONSENT_NOTE = "Con gái ký giấy đồng ý, lưu ở bệnh án giấy"


async def exported(instance: Instance, consult_id: str) -> dict[str, Any]:
    async with await http(instance, "bavi.clinician") as client:
        async with client.get(f"/api/consults/{consult_id}/fhir") as resp:
            assert resp.status == 200 and resp.content_type == "application/fhir+json"
            body: dict[str, Any] = await resp.json(content_type=None)
    return body


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) in a JSON document, containers included."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")


def assert_sound(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Bundle and each of its resources validate as R4(B) and against HL7's R4 JSON schema;
    nothing is empty; every reference resolves to an entry. Returns the resources by `Type/id`."""
    Bundle.model_validate(body)
    assert schema_errors(body) == []
    by_ref: dict[str, dict[str, Any]] = {}
    for entry in body["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        ref = f"{resource['resourceType']}/{resource['id']}"
        assert entry["fullUrl"].endswith(f"/fhir/{ref}"), entry["fullUrl"]
        assert ref not in by_ref, ref
        by_ref[ref] = resource
    for path, value in walk(body):
        assert value not in ("", [], {}, None), f"empty at {path}"
        if isinstance(value, str):
            assert value.strip(), f"blank at {path}"
        if path.endswith(".reference"):
            assert value in by_ref, f"{path} → {value} is not in the Bundle"
    return by_ref


async def test_the_bundle_carries_the_patient_consent_conclusion_result_and_files(instance: Instance, clients) -> None:
    clinician = await clients(instance, "bavi.clinician")
    surgeon = await clients(instance, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = await ask(clinician, patient=IDENTITY, consent={**BY_DAUGHTER, "note": CONSENT_NOTE})
    cid = consult["id"]
    await surgeon.next("consult:offer")
    assert (await surgeon.call("consult:accept", {"consult_id": cid}))["ok"] is True
    note = {"consult_id": cid, "op_id": "n1", "section": "assessment", "text": "Viêm ruột thừa cấp"}
    assert (await surgeon.call("note:add", note))["ok"] is True
    async with await http(instance, "bavi.clinician") as client:
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename=FILENAME, content_type="image/png")
        async with client.post(f"/api/consults/{cid}/attachments", data=form) as resp:
            assert resp.status == 201, await resp.text()
    end = {"consult_id": cid, "outcome": "treated_locally", "summary": "Mổ tại chỗ, có hướng dẫn"}
    assert (await surgeon.call("consult:end", end))["ok"] is True
    result = {"consult_id": cid, "op_id": "r1", "result": "recovered", "note": "Ra viện ngày thứ 5"}
    assert (await clinician.call("consult:result", result))["ok"] is True

    resources = assert_sound(await exported(instance, cid))
    kinds = sorted({ref.split("/")[0] for ref in resources})
    assert kinds == sorted(
        [
            "Communication",
            "Consent",
            "DocumentReference",
            "Encounter",
            "Observation",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "RelatedPerson",
            "ServiceRequest",
        ]
    )
    patient = resources[f"Patient/{cid}"]
    assert patient["name"] == [{"text": "Nguyễn Văn Hùng"}] and patient["gender"] == "male"
    assert patient["birthDate"] == "1968-03-14" and patient["address"] == [{"text": IDENTITY["address"]}]
    ids = {i["system"]: i["value"] for i in patient["identifier"]}
    assert ids == {
        fhir.hospital_patient_system("bavi-dgh"): "BV-2041",
        fhir.NATIONAL_ID_SYSTEM: "001068004217",
        fhir.INSURANCE_SYSTEM: "HT3010123456789",
    }
    organizations = [k for k in resources if k.startswith("Organization/")]
    assert "Organization/bavi-dgh" in organizations and len(organizations) == 2  # Ba Vì and Xanh Pôn
    names = {r["name"][0]["text"] for k, r in resources.items() if k.startswith("Practitioner/")}
    assert "BS. Lê Minh Đức" in names and len(names) == 2

    assert "hospitalization" not in resources[f"Encounter/{cid}"]  # a consult discharges no one
    outcome = resources[f"Observation/{cid}-outcome"]
    assert outcome["valueCodeableConcept"]["coding"][0]["code"] == "treated_locally"
    assert outcome["note"] == [{"text": "Mổ tại chỗ, có hướng dẫn"}]
    reported = resources[f"Observation/{cid}-result"]
    assert reported["valueCodeableConcept"]["coding"][0]["code"] == "recovered"
    assert reported["note"] == [{"text": "Ra viện ngày thứ 5"}]
    assert reported["performer"][0]["display"] != "BS. Lê Minh Đức"  # the requesting side reported it

    consent = resources[f"Consent/{cid}"]
    assert consent["status"] == "active" and consent["performer"] == [{"reference": f"RelatedPerson/{cid}-consent"}]
    assert resources[f"RelatedPerson/{cid}-consent"]["relationship"] == [{"text": "con gái"}]
    assert [p["code"][0]["coding"][0]["code"] for p in consent["provision"]["provision"]] == ["consult"]
    assert {"url": fhir.CONSENT_METHOD_EXTENSION, "valueCode": "written"} in consent["extension"]
    assert {"url": fhir.CONSENT_NOTE_EXTENSION, "valueString": CONSENT_NOTE} in consent["extension"]

    (document,) = [r for k, r in resources.items() if k.startswith("DocumentReference/")]
    attachment = document["content"][0]["attachment"]
    assert attachment["title"] == FILENAME and attachment["contentType"] == "image/png"
    assert attachment["size"] == len(PNG) and "hash" not in attachment  # R4's hash is SHA-1; ours is SHA-256
    sha256 = base64.b64encode(hashlib.sha256(PNG).digest()).decode()
    assert attachment["extension"] == [{"url": fhir.SHA256_EXTENSION, "valueBase64Binary": sha256}]
    async with await http(instance, "bavi.clinician") as client:
        async with client.get(attachment["url"]) as resp:
            assert resp.status == 200 and await resp.read() == PNG


async def test_a_cancelled_consult_with_its_consent_withdrawn_exports_valid(instance: Instance, clients) -> None:
    clinician = await clients(instance, "bavi.clinician")
    consult = await ask(clinician, patient={"ref": "BV-0043", "summary": ""})
    cid = consult["id"]
    withdrawal = {"consult_id": cid, "op_id": uuid.uuid4().hex, "given_by": "patient", "method": "verbal"}
    withdrawn = await clinician.call("consult:consent", {**withdrawal, "scopes": []})
    assert withdrawn["ok"] is True, withdrawn
    assert (await clinician.call("consult:cancel", {"consult_id": cid}))["ok"] is True

    resources = assert_sound(await exported(instance, cid))
    request = resources[f"ServiceRequest/{cid}"]
    assert request["status"] == "revoked" and "note" not in request and "reasonCode" not in request
    assert resources[f"Encounter/{cid}"]["status"] == "cancelled"
    consent = resources[f"Consent/{cid}"]
    assert consent["status"] == "inactive" and consent["provision"] == {"type": "deny"}
    assert not any(ref.startswith("Observation/") for ref in resources)  # no conclusion, no result


def test_the_official_schema_rejects_what_r4_forbids() -> None:
    """The schema check is no formality: an empty string and a `note` on a Consent (R4 has none)
    are named, a sound resource passes."""
    consent = {
        "resourceType": "Consent",
        "id": "c1",
        "status": "active",
        "scope": {"text": "điều trị"},
        "category": [{"text": ""}],
        "note": [{"text": "không có trong R4"}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:c1", "resource": consent}],
    }
    errors = schema_errors(bundle)
    assert any("category/0/text" in e for e in errors) and any("'note' was unexpected" in e for e in errors), errors
    consent = {**consent, "category": [{"text": "Đồng ý hội chẩn"}]}
    del consent["note"]
    assert schema_errors({**bundle, "entry": [{"fullUrl": "urn:uuid:c1", "resource": consent}]}) == []


async def test_signed_minutes_export_as_composition_document_and_provenance(
    start_instance: StartInstance, clients, tmp_path: Path
) -> None:
    pki = test_pki.make(tmp_path)
    instance = await start_instance(SIGNING_TRUST_ROOTS=str(pki.roots_pem))
    web = Http(instance)
    try:
        consult, _, _ = await ended(clients, instance)
        cid = consult["id"]
        await with_keys(web, pki, consult)
        for username in ("xanhpon.surgeon", "bavi.clinician"):
            status, body = await web.sign(username, cid)
            assert status == 200, body
        _, pdf = await web.get("bavi.clinician", f"/api/consults/{cid}/minutes.pdf")
    finally:
        await web.close()

    resources = assert_sound(await exported(instance, cid))
    composition = resources[f"Composition/{cid}-minutes"]
    assert composition["type"]["coding"] == [
        {"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}
    ]
    assert composition["status"] == "final" and len(composition["attester"]) == 2
    document = resources[f"DocumentReference/{cid}-minutes-v1"]
    attachment = document["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf" and attachment["size"] == len(pdf)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(pdf).digest()).decode()
    sha256 = base64.b64encode(hashlib.sha256(pdf).digest()).decode()
    assert attachment["extension"] == [{"url": fhir.SHA256_EXTENSION, "valueBase64Binary": sha256}]
    assert attachment["url"].endswith(f"/api/consults/{cid}/minutes.pdf?version=1")
    provenance = resources[f"Provenance/{cid}-minutes-v1"]
    assert [s["type"][0]["code"] for s in provenance["signature"]] == [
        "1.2.840.10065.1.12.1.1",  # the chair: author's signature
        "1.2.840.10065.1.12.1.4",  # the secretary: recorder's signature
    ]
    assert {"reference": f"DocumentReference/{cid}-minutes-v1"} in provenance["target"]
