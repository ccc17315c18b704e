"""A hospital that records its consults (`record_consults`, set by an admin): a clinician at Ba
Vì and a specialist at Xanh Pôn join the call on two instances and the recording starts with
nobody sending `recording:start`, in the specialist's name; not without the hospital's setting,
nor without the patient's consent to recording."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from sqlalchemy import select

from server.records import consults
from server.records.models import AuditEntry, ConsultEvent
from tests.conftest import Client, Instance, login
from tests.system.test_recording import ONLY_CONSULT, Participant, fetch, recorded_call

QUIET_S = 2.0  # how long a call is watched for a recording that must not start


async def set_recording(instance: Instance, value: Any) -> tuple[int, Any]:
    admin = await login(instance.url, "admin")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.patch(f"{instance.url}/api/admin/hospitals/bavi-dgh", json={"record_consults": value}) as resp:
            return resp.status, await resp.json()


async def close(people: list[Participant], surgeon: Client, consult_id: str) -> None:
    await surgeon.call("recording:stop", {"consult_id": consult_id})  # the chair ends it, if any
    for person in people:
        await person.close()


async def test_a_hospital_set_to_record_has_its_consult_recorded_once_both_sides_are_in(two_instances, clients) -> None:
    a, b = two_instances
    status, body = await set_recording(a, "yes")
    assert status == 400 and body["error"]["code"] == "invalid", body
    status, body = await set_recording(a, True)
    assert status == 200 and body["hospital"]["record_consults"] is True, body
    clinician, surgeon, consult_id, people = await recorded_call(clients, a, b)
    try:
        started = (await clinician.next("recording:updated", within=20))["recording"]
        assert started["state"] == "recording" and started["consult_id"] == consult_id
        assert (await surgeon.next("recording:updated", within=20))["recording"]["id"] == started["id"]
        consult = await consults.get(a.services.db, consult_id)
        assert consult is not None and started["started_by"] == consult.specialist_id  # the chair
        again = await surgeon.call("recording:start", {"consult_id": consult_id})
        assert again["error"]["code"] == "conflict", again  # one recording per call
        async with a.services.db.session() as session:
            line = await session.scalar(
                select(ConsultEvent).where(
                    ConsultEvent.consult_id == consult_id, ConsultEvent.kind == "recording_started"
                )
            )
            changed = await session.scalar(
                select(AuditEntry).where(
                    AuditEntry.action == "admin.hospital.update", AuditEntry.target_id == "bavi-dgh"
                )
            )
        assert line is not None and line.detail["reason"] == "hospital_setting"
        assert line.actor_id == started["started_by"]
        assert changed is not None and changed.detail == "record_consults=True"
    finally:
        await close(people, surgeon, consult_id)


async def test_a_hospital_not_set_to_record_has_nothing_recorded_by_itself(two_instances, clients) -> None:
    a, b = two_instances
    clinician, surgeon, consult_id, people = await recorded_call(clients, a, b)
    try:
        assert await nothing_recorded(a, clinician, consult_id)
    finally:
        await close(people, surgeon, consult_id)


async def test_without_consent_to_recording_it_starts_only_once_consent_is_given(two_instances, clients) -> None:
    a, b = two_instances
    assert (await set_recording(a, True))[0] == 200
    clinician, surgeon, consult_id, people = await recorded_call(clients, a, b, consent=ONLY_CONSULT)
    try:
        assert await nothing_recorded(a, clinician, consult_id)
        op = {"consult_id": consult_id, "op_id": "consent-rec-1", "given_by": "patient", "method": "verbal"}
        given = await clinician.call("consult:consent", {**op, "scopes": ["consult", "recording"]})
        assert given["ok"], given
        started = (await clinician.next("recording:updated", within=20))["recording"]
        assert started["state"] == "recording" and started["segment"] == 1
    finally:
        await close(people, surgeon, consult_id)


async def nothing_recorded(instance: Instance, clinician: Client, consult_id: str) -> bool:
    """No `recording:updated` for a while after both joined, and no recording in the record."""
    try:
        await clinician.next("recording:updated", within=QUIET_S)
    except TimeoutError:
        pass
    else:
        return False
    token = await login(instance.url, "bavi.clinician")
    status, body, _ = await fetch(instance, token, f"/api/consults/{consult_id}/recordings")
    return status == 200 and json.loads(body)["recordings"] == []
