"""Playing a recording through a playback link (POST /api/recordings/{id}/playback): a
`<video src>` plays it with HTTP `Range` and no bearer token; the link names one recording and
one user, ends after a few minutes or with the sign-in, and its playback is audited once.
The file here is a few kilobytes of known bytes (tests/system/test_recording.py records real calls)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import select

from server.policy.auth import PLAYBACK_TICKET_TTL_S, issue_playback_ticket, read_token
from server.records.models import AuditEntry, Recording, User, new_id, utcnow
from tests.conftest import SECRET, Instance, login
from tests.system.test_consults import ask

DATA = bytes(range(256)) * 16  # 4 KiB, every range distinct enough to tell apart


async def _chunks() -> AsyncIterator[bytes]:
    yield DATA


async def add_recording(instance: Instance, consult_id: str) -> str:
    """A finished recording of the consult's call, its file `DATA`."""
    db = instance.services.db
    sha256, size = await instance.services.blobs.put(_chunks(), len(DATA))
    async with db.session() as session, session.begin():
        surgeon = await session.scalar(select(User.id).where(User.username == "xanhpon.surgeon"))
        item = Recording(
            id=new_id(),
            consult_id=consult_id,
            segment=1,
            state="stopped",
            started_at=utcnow(),
            stopped_at=utcnow(),
            started_by=surgeon,
            duration_s=1.0,
            bytes=size,
            sha256=sha256,
            retain_until=utcnow() + timedelta(days=3650),
            legal_hold=False,
        )
        session.add(item)
    return item.id


async def request(instance: Instance, method: str, path: str, token: str | None = None, **headers: str) -> Any:
    """Status, body and headers; with no `token`, no Authorization header (as a `<video src>`)."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers={**auth, **headers}) as http:
        async with http.request(method, instance.url + path) as resp:
            return resp.status, await resp.read(), resp.headers


async def test_a_playback_link_plays_one_recording_with_range_and_is_audited_once(instance, clients) -> None:
    consult = await ask(await clients(instance, "bavi.clinician"))
    recording_id = await add_recording(instance, consult["id"])
    other_id = await add_recording(instance, consult["id"])
    token = await login(instance.url, "bavi.clinician")

    status, body, _ = await request(instance, "POST", f"/api/recordings/{recording_id}/playback", token)
    assert status == 200, body
    link = json.loads(body)
    url = link["url"]
    assert url.startswith(f"/api/recordings/{recording_id}/media?ticket=")
    assert 0 < (datetime.fromisoformat(link["expires_at"]) - utcnow()).total_seconds() <= PLAYBACK_TICKET_TTL_S

    # The link plays without a bearer token, part by part, as a player asks.
    status, part, headers = await request(instance, "GET", url, Range="bytes=100-1099")
    assert status == 206 and part == DATA[100:1100]
    assert headers["Content-Range"] == f"bytes 100-1099/{len(DATA)}"
    status, whole, _ = await request(instance, "GET", url)
    assert status == 200 and whole == DATA

    # One playback, one audit entry: the link's, not each range the player asked for.
    async with instance.services.db.session() as session:
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == recording_id))).all()
    assert list(actions) == ["recording.play"]

    # Not for another recording, not altered, not expired, never a bearer token.
    ticket = url.split("ticket=", 1)[1]
    status, body, _ = await request(instance, "GET", f"/api/recordings/{other_id}/media?ticket={ticket}")
    assert status == 403 and b"another recording" in body
    altered = ticket[:-4] + ("AAAA" if not ticket.endswith("AAAA") else "BBBB")
    status, body, _ = await request(instance, "GET", f"/api/recordings/{recording_id}/media?ticket={altered}")
    assert status == 401 and b"not valid" in body
    old, _ = issue_playback_ticket(SECRET, recording_id, read_token(SECRET, token), now=time.time() - 3600)
    status, body, _ = await request(instance, "GET", f"/api/recordings/{recording_id}/media?ticket={old}")
    assert status == 401 and b"expired" in body
    status, _, _ = await request(instance, "GET", "/api/me", ticket)
    assert status == 401

    # A clinician of another hospital gets no link.
    stranger = await login(instance.url, "bavi.nurse")
    status, body, _ = await request(instance, "POST", f"/api/recordings/{recording_id}/playback", stranger)
    assert status == 403 and b'"forbidden"' in body

    # Signing out ends the links asked for with that sign-in.
    status, _, _ = await request(instance, "POST", "/api/logout", token)
    assert status == 200
    status, body, _ = await request(instance, "GET", url, Range="bytes=0-99")
    assert status == 401 and b"signed out" in body
