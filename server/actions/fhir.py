"""The consult record as a FHIR R4 collection Bundle (`GET /api/consults/{id}/fhir`).

Every reference in the Bundle is relative (`Practitioner/<id>`) and resolves to an entry whose
fullUrl is `<base>/fhir/<Type>/<id>`; every person and hospital the record names is an entry.
Empty values (an empty string, list or object, or null) are dropped in one place, `pruned`.
Identifier and code systems without a published national equivalent are this service's own,
under `SYSTEM` (docs/protocol.md lists them).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from server.actions.record import OUTCOMES
from server.policy.matching import SPECIALTIES
from server.records import notes
from server.records.minutes_template import RESULTS, TITLES

SYSTEM = "https://telerounds.example/fhir"
NATIONAL_ID_SYSTEM = f"{SYSTEM}/sid/vn-citizen-id"  # căn cước công dân, 12 digits
INSURANCE_SYSTEM = f"{SYSTEM}/sid/vn-health-insurance"  # thẻ bảo hiểm y tế
USER_SYSTEM = f"{SYSTEM}/sid/user"
HOSPITAL_SYSTEM = f"{SYSTEM}/sid/hospital"
OUTCOME_SYSTEM = f"{SYSTEM}/CodeSystem/consult-outcome"
RESULT_SYSTEM = f"{SYSTEM}/CodeSystem/consult-result"
OBSERVATION_SYSTEM = f"{SYSTEM}/CodeSystem/observation"
SHA256_EXTENSION = f"{SYSTEM}/StructureDefinition/attachment-sha256"
CONSENT_METHOD_EXTENSION = f"{SYSTEM}/StructureDefinition/consent-method"
CONSENT_RECORDER_EXTENSION = f"{SYSTEM}/StructureDefinition/consent-recorded-by"
# R4's Consent has no `note`: what the recorder wrote about the consent travels in this extension.
CONSENT_NOTE_EXTENSION = f"{SYSTEM}/StructureDefinition/consent-note"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
LOINC = "http://loinc.org"
CONSULT_NOTE = {"system": LOINC, "code": "11488-4", "display": "Consult note"}
# ASTM E1762-95 signature types (FHIR's Signature.type value set): the chair signs as the author,
# the secretary as the one who recorded the minutes, every other member as a co-participant.
SIGNATURE_SYSTEM = "urn:iso-astm:E1762-95:2013"
SIGNATURE_TYPES = {
    "chair": ("1.2.840.10065.1.12.1.1", "Author's Signature"),
    "secretary": ("1.2.840.10065.1.12.1.4", "Transcriptionist/Recorder Signature"),
    "member": ("1.2.840.10065.1.12.1.3", "Co-participant's Signature"),
}
IHE_FORMAT = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
PROVENANCE_AGENT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

GIVERS = {"patient": "Người bệnh", "relative": "Người nhà", "guardian": "Người giám hộ"}
PARTS = {"requester": "Bác sĩ đề nghị", "specialist": "Chuyên gia", "invited": "Được mời", "team": "Kíp tuyến dưới"}


def hospital_patient_system(hospital_id: str) -> str:
    """The system of a hospital's own patient references (its medical record numbers)."""
    return f"{SYSTEM}/sid/hospital/{hospital_id}/patient"


def pruned(value: Any) -> Any:
    """`value` without empty strings, empty lists, empty objects or nulls, at any depth: FHIR
    allows none of them (an empty `note.text` is invalid against the R4 JSON schema)."""
    if isinstance(value, dict):
        kept = {k: pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ("", None, [], {})}
    if isinstance(value, list):
        items = [pruned(v) for v in value]
        return [v for v in items if v not in ("", None, [], {})]
    if isinstance(value, str):
        return value.strip() and value
    return value


def bundle(record: dict[str, Any], base_url: str, signed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Bundle: ServiceRequest, Encounter, a Communication per note, the outcome and the
    result as Observations, Consent, a DocumentReference per attachment and per recording, then the Patient, every
    Practitioner (with a PractitionerRole at their hospital) and Organization they reference.
    With `signed` (the latest signed version of the minutes, `signatures.for_export`): the
    minutes as a Composition, their signed PDF as a DocumentReference, and a Provenance
    carrying the signatures."""
    c = record["consult"]
    cid = c["id"]
    patient_ref = {"reference": f"Patient/{cid}"}
    request_ref = {"reference": f"ServiceRequest/{cid}"}
    encounter_ref = {"reference": f"Encounter/{cid}"}
    people: dict[str, dict[str, Any]] = {}
    hospitals: dict[str, dict[str, Any]] = {}
    requesting = c["requester"]["hospital"] if c["requester"] else record["hospital"]
    if record["hospital"]:
        hospitals[record["hospital"]["id"]] = record["hospital"]

    def who(person: dict[str, Any] | None) -> dict[str, Any] | None:
        """A reference to a person's Practitioner entry, added to the Bundle on first use."""
        if not person:
            return None
        people[person["id"]] = person
        hospitals[person["hospital"]["id"]] = person["hospital"]
        return {"reference": f"Practitioner/{person['id']}", "display": person["name"]}

    def hospital(h: dict[str, Any] | None) -> dict[str, Any] | None:
        if not h:
            return None
        hospitals[h["id"]] = h
        return {"reference": f"Organization/{h['id']}", "display": h["name"]}

    resources: list[dict[str, Any]] = []
    waived = c.get("consent_waived_reason")
    resources.append(
        {
            "resourceType": "ServiceRequest",
            "id": cid,
            "status": {"ended": "completed", "cancelled": "revoked"}.get(c["status"], "active"),
            "intent": "order",
            "priority": {"routine": "routine", "urgent": "urgent", "emergency": "stat"}[c["urgency"]],
            "category": [{"text": "Hội chẩn từ xa"}],
            "code": {"text": SPECIALTIES.get(c["specialty"], c["specialty"])},
            "subject": patient_ref,
            "encounter": encounter_ref,
            "authoredOn": c["created_at"],
            "requester": who(c["requester"]),
            "performer": [who(c["specialist"])],
            "reasonCode": [{"text": c["patient"].get("summary")}],
            "note": [{"text": f"Hội chẩn cấp cứu trước khi có đồng ý của người bệnh: {waived}"}] if waived else [],
        }
    )
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": cid,
        "status": {"active": "in-progress", "ended": "finished", "cancelled": "cancelled"}.get(c["status"], "planned"),
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"},
        "subject": patient_ref,
        "basedOn": [request_ref],
        "participant": [
            {"type": [{"text": PARTS.get(p["part"], p["part"])}], "individual": who(p)} for p in record["participants"]
        ],
        "serviceProvider": hospital(requesting),
    }
    if c["started_at"]:
        encounter["period"] = {"start": c["started_at"], "end": c["ended_at"]}
    resources.append(encounter)
    for n in record["notes"]:
        resources.append(
            {
                "resourceType": "Communication",
                "id": n["id"],
                "status": "completed",
                "category": [{"text": notes.SECTION_NAMES[n["section"]]}],
                "subject": patient_ref,
                "encounter": encounter_ref,
                "basedOn": [request_ref],
                "sent": n["created_at"],
                "sender": who(n["author"]),
                "payload": [{"contentString": n["text"]}],
                # What this text replaced, newest first: who wrote it, when, and the text.
                "note": [
                    {
                        "authorReference": who(old["author"]),
                        "time": old["created_at"],
                        "text": f"Nội dung trước khi sửa: {old['text']}",
                    }
                    for old in n["history"]
                ],
            }
        )
    if c["outcome"] or c["summary"]:
        # The consult's conclusion: what the specialist advised, with the end summary as its note.
        # Not Encounter.hospitalization.dischargeDisposition: the patient is not discharged by a consult.
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"{cid}-outcome",
                "status": "final",
                "code": {
                    "coding": [{"system": OBSERVATION_SYSTEM, "code": "consult-outcome"}],
                    "text": "Kết luận hội chẩn",
                },
                "subject": patient_ref,
                "encounter": encounter_ref,
                "basedOn": [request_ref],
                "effectiveDateTime": c["ended_at"],
                "performer": [who(c["ended_by"] or c["specialist"])],
                "valueCodeableConcept": {
                    "coding": [{"system": OUTCOME_SYSTEM, "code": c["outcome"], "display": OUTCOMES.get(c["outcome"])}]
                    if c["outcome"]
                    else [],
                    "text": OUTCOMES.get(c["outcome"] or "", "Chưa kết luận"),
                },
                "note": [{"text": c["summary"]}],
            }
        )
    result = c.get("result")
    if result:
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"{cid}-result",
                "status": "final",
                "code": {
                    "coding": [{"system": OBSERVATION_SYSTEM, "code": "consult-result"}],
                    "text": "Kết quả điều trị báo lại",
                },
                "subject": patient_ref,
                "encounter": encounter_ref,
                "basedOn": [request_ref],
                "effectiveDateTime": result["reported_at"],
                "performer": [who(result["reported_by"])],
                "valueCodeableConcept": {
                    "coding": [
                        {"system": RESULT_SYSTEM, "code": result["result"], "display": RESULTS.get(result["result"])}
                    ],
                    "text": RESULTS.get(result["result"], result["result"]),
                },
                "note": [{"text": result["note"]}],
            }
        )
    consent = c.get("consent")
    if consent:
        resources.extend(_consent(cid, consent, patient_ref, who, hospital(requesting)))
    for f in record["attachments"]:
        resources.append(
            {
                "resourceType": "DocumentReference",
                "id": f["id"],
                "status": "current",
                "subject": patient_ref,
                "date": f["created_at"],
                "author": [who(f["uploader"])],
                "description": f["filename"],
                "content": [
                    {
                        "attachment": {
                            # R4's Attachment.hash is SHA-1; the store keeps SHA-256, so it goes here.
                            "extension": [
                                {
                                    "url": SHA256_EXTENSION,
                                    "valueBase64Binary": base64.b64encode(bytes.fromhex(f["sha256"])).decode(),
                                }
                            ],
                            "contentType": f["content_type"],
                            "url": f"{base_url}{f['url']}",
                            "title": f["filename"],
                            "size": f["size"],
                            "creation": f["created_at"],
                        }
                    }
                ],
                "context": {"encounter": [encounter_ref], "related": [request_ref]},
            }
        )
    if signed is not None:
        resources.extend(_signed_minutes(cid, record, signed, base_url, who))
    for r in record.get("recordings", []):
        if r["sha256"] is None:
            continue  # still being recorded: exported once it ends
        resources.append(
            {
                "resourceType": "DocumentReference",
                "id": r["id"],
                "status": "current",
                "subject": patient_ref,
                "date": r["started_at"],
                "description": f"Ghi hình hội chẩn, phần {r['segment']}"
                + (" (bị gián đoạn)" if r["state"] == "failed" else ""),
                "content": [
                    {
                        "attachment": {
                            "extension": [
                                {
                                    "url": SHA256_EXTENSION,
                                    "valueBase64Binary": base64.b64encode(bytes.fromhex(r["sha256"])).decode(),
                                }
                            ],
                            "contentType": "video/webm",
                            "url": f"{base_url}/api/recordings/{r['id']}/media",
                            "title": f"recording-{r['id']}.webm",
                            "size": r["bytes"],
                            "creation": r["started_at"],
                        }
                    }
                ],
                "context": {
                    "encounter": [encounter_ref],
                    "related": [request_ref],
                    "period": {"start": r["started_at"], "end": r["stopped_at"]},
                },
            }
        )
    resources.append(_patient(cid, c["patient"], requesting, hospital(requesting)))
    for person in list(people.values()):
        resources.append(
            {
                "resourceType": "Practitioner",
                "id": person["id"],
                "identifier": [{"system": USER_SYSTEM, "value": person["id"]}],
                "name": [{"text": person["name"]}],
            }
        )
        resources.append(
            {
                "resourceType": "PractitionerRole",
                "id": person["id"],
                "practitioner": {"reference": f"Practitioner/{person['id']}"},
                "organization": hospital(person["hospital"]),
                "code": [{"text": TITLES.get(person["role"], person["role"])}],
            }
        )
    for h in hospitals.values():
        resources.append(
            {
                "resourceType": "Organization",
                "id": h["id"],
                "identifier": [{"system": HOSPITAL_SYSTEM, "value": h["id"]}],
                "type": [{"text": h.get("level")}],
                "name": h["name"],
            }
        )
    out: dict[str, Any] = pruned(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": c["ended_at"] or c["created_at"],
            "entry": [{"fullUrl": f"{base_url}/fhir/{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
        }
    )
    return out


def _patient(
    cid: str, patient: dict[str, Any], hospital: dict[str, Any] | None, organization: dict[str, Any] | None
) -> dict[str, Any]:
    """The patient: the hospital's own reference, the citizen ID and the insurance card as identifiers."""
    identifiers: list[dict[str, Any]] = []
    if hospital and patient.get("ref"):
        identifiers.append(
            {
                "use": "usual",
                "type": {"coding": [{"system": V2_0203, "code": "MR"}], "text": "Mã người bệnh"},
                "system": hospital_patient_system(hospital["id"]),
                "value": patient["ref"],
                "assigner": organization,
            }
        )
    if patient.get("national_id"):
        identifiers.append(
            {
                "use": "official",
                "type": {"coding": [{"system": V2_0203, "code": "NI"}], "text": "Căn cước công dân"},
                "system": NATIONAL_ID_SYSTEM,
                "value": patient["national_id"],
            }
        )
    if patient.get("insurance_id"):
        identifiers.append(
            {
                "use": "official",
                "type": {"coding": [{"system": V2_0203, "code": "SB"}], "text": "Thẻ bảo hiểm y tế"},
                "system": INSURANCE_SYSTEM,
                "value": patient["insurance_id"],
            }
        )
    return {
        "resourceType": "Patient",
        "id": cid,
        "identifier": identifiers,
        "name": [{"text": patient.get("name")}],
        "gender": patient.get("sex"),
        "birthDate": patient.get("birth_date"),
        "address": [{"text": patient.get("address")}],
        "managingOrganization": organization,
    }


def _consent(
    cid: str,
    consent: dict[str, Any],
    patient_ref: dict[str, Any],
    who: Any,
    organization: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The Consent (inactive once withdrawn), and a RelatedPerson when a relative or guardian gave it."""
    out: list[dict[str, Any]] = []
    performer = patient_ref
    if consent["given_by"] != "patient":
        out.append(
            {
                "resourceType": "RelatedPerson",
                "id": f"{cid}-consent",
                "patient": patient_ref,
                "relationship": [
                    {"text": consent.get("relation") or GIVERS.get(consent["given_by"], consent["given_by"])}
                ],
            }
        )
        performer = {"reference": f"RelatedPerson/{cid}-consent"}
    scopes = consent["scopes"]
    out.append(
        {
            "resourceType": "Consent",
            "id": cid,
            "extension": [
                {"url": CONSENT_METHOD_EXTENSION, "valueCode": consent["method"]},
                {"url": CONSENT_RECORDER_EXTENSION, "valueReference": who(consent.get("recorded_by"))}
                if consent.get("recorded_by")
                else None,
                {"url": CONSENT_NOTE_EXTENSION, "valueString": consent["note"]} if consent.get("note") else None,
            ],
            "status": "active" if scopes else "inactive",
            "scope": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment"}]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}], "text": "Đồng ý hội chẩn"}],
            "patient": patient_ref,
            "dateTime": consent.get("recorded_at"),
            "performer": [performer],
            "organization": [organization],
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {
                "type": "permit" if scopes else "deny",
                "provision": [
                    {
                        "type": "permit",
                        "code": [{"coding": [{"system": f"{SYSTEM}/CodeSystem/consent-scope", "code": s}]}],
                    }
                    for s in scopes
                ],
            },
        }
    )
    return out


def _signed_minutes(
    cid: str,
    record: dict[str, Any],
    signed: dict[str, Any],
    base_url: str,
    who: Callable[[dict[str, Any] | None], dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """The minutes (biên bản hội chẩn) as a Composition, the signed PDF of their latest signed
    version as a DocumentReference, and a Provenance with each signature given to it."""
    c = record["consult"]
    version = signed["version"]
    composition_id = f"{cid}-minutes"
    document_id = f"{cid}-minutes-v{version}"
    signatures = signed["signatures"]
    authors = [who(s["signer"]) for s in signatures if s["role"] == "chair"] or [who(c["specialist"] or c["requester"])]
    sections = []
    for code, name in notes.SECTION_NAMES.items():
        items = [n for n in record["notes"] if n["section"] == code]
        if items:
            sections.append({"title": name, "entry": [{"reference": f"Communication/{n['id']}"} for n in items]})
    composition = {
        "resourceType": "Composition",
        "id": composition_id,
        "status": "final" if signed["locked"] else "preliminary",
        "type": {"coding": [CONSULT_NOTE], "text": "Biên bản hội chẩn từ xa"},
        "subject": {"reference": f"Patient/{cid}"},
        "encounter": {"reference": f"Encounter/{cid}"},
        "date": signed["created_at"],
        "author": authors,
        "title": f"Biên bản hội chẩn từ xa — phiên bản {version}",
        "attester": [
            {
                "mode": "legal" if s["role"] == "chair" else "professional",
                "time": s["signed_at"],
                "party": who(s["signer"]),
            }
            for s in signatures
        ],
        "section": sections,
    }
    document = {
        "resourceType": "DocumentReference",
        "id": document_id,
        "status": "current",
        "docStatus": "final" if signed["locked"] else "preliminary",
        "type": {"coding": [CONSULT_NOTE]},
        "subject": {"reference": f"Patient/{cid}"},
        "date": signed["created_at"],
        "author": authors,
        "description": f"Biên bản hội chẩn từ xa, phiên bản {version}, đã ký số (PAdES)",
        "content": [
            {
                "attachment": {
                    "extension": [
                        {
                            "url": SHA256_EXTENSION,
                            "valueBase64Binary": base64.b64encode(bytes.fromhex(signed["sha256"])).decode(),
                        }
                    ],
                    "contentType": "application/pdf",
                    "url": f"{base_url}/api/consults/{cid}/minutes.pdf?version={version}",
                    "size": signed["size"],
                    "hash": signed["sha1"],  # R4's Attachment.hash: SHA-1, base64
                    "title": f"bien-ban-hoi-chan-v{version}.pdf",
                    "creation": signed["created_at"],
                },
                "format": {
                    "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                    "code": "urn:ihe:iti:xds-sd:pdf:2008",
                },
            }
        ],
        "context": {
            "encounter": [{"reference": f"Encounter/{cid}"}],
            "related": [{"reference": f"Composition/{composition_id}"}],
        },
    }
    provenance = {
        "resourceType": "Provenance",
        "id": document_id,
        "target": [{"reference": f"DocumentReference/{document_id}"}, {"reference": f"Composition/{composition_id}"}],
        "recorded": signatures[-1]["signed_at"] if signatures else signed["created_at"],
        "agent": [
            {
                "type": {"coding": [{"system": PROVENANCE_AGENT, "code": "attester"}]},
                "role": [{"text": s["role"]}],
                "who": who(s["signer"]),
            }
            for s in signatures
        ],
        "signature": [
            {
                "type": [
                    {
                        "system": SIGNATURE_SYSTEM,
                        "code": SIGNATURE_TYPES[s["role"]][0],
                        "display": SIGNATURE_TYPES[s["role"]][1],
                    }
                ],
                "when": s["signed_at"],
                "who": who(s["signer"]),
                "sigFormat": "application/pdf",  # a PAdES signature inside the PDF itself
            }
            for s in signatures
        ],
    }
    return [composition, document, provenance]
