"""Recording a call at the server: a clinician at Ba Vì and a specialist at Xanh Pôn, on two
instances, each sending a synthetic camera of their own colour and a tone; the server's
recorder joins the call and writes one WebM of both."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy
import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription
from playwright.async_api import Page
from sqlalchemy import select, update

from server.records import audit, chain, recordings
from server.records.models import AuditEntry, Recording, utcnow
from tests.conftest import CONSENT, Client, Instance, login, until
from tests.system.browsing import REMOTE_VIDEO_PLAYS, give_consent, shot, signed_in, video_plays
from tests.system.test_consults import ask
from tests.system.test_faults import children  # noqa: F401  (a fixture: instances as processes, to kill -9)
from tests.system.test_fhir import assert_sound, exported
from tests.system.test_rtc import ColourTrack, join, peer_connection
from tests.system.test_turn import candidate_types, relay_only
from tests.system.turn import TurnServer

# Time limits a user feels (a call within seconds, a recording in real time): run on CPU not
# shared with another test (`make test` runs these after the rest, in one process).
pytestmark = pytest.mark.alone

RED, GREEN = (200, 30, 30), (30, 200, 30)
ONLY_CONSULT = {"given_by": "patient", "method": "verbal", "scopes": ["consult"]}


class ToneTrack(AudioStreamTrack):
    """A synthetic microphone: a 440 Hz tone."""

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()  # silence, timed as a real microphone
        samples = frame.samples
        start = frame.pts or 0
        t = (numpy.arange(samples) + start) / frame.sample_rate
        tone = (numpy.sin(2 * numpy.pi * 440 * t) * 8000).astype(numpy.int16)
        out = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, Fraction(1, frame.sample_rate)
        return out


class Participant:
    """An aiortc participant that answers the recorder's offers with its camera and microphone."""

    def __init__(
        self,
        client: Client,
        consult_id: str,
        colour: tuple[int, int, int],
        connect: Callable[[], RTCPeerConnection] = peer_connection,
    ) -> None:
        self.client, self.consult_id, self.colour, self.connect = client, consult_id, colour, connect
        self.pcs: list[RTCPeerConnection] = []
        self.task = asyncio.create_task(self._answer())

    async def _answer(self) -> None:
        while True:
            message = await self.client.queue("rtc:signal").get()
            if message["data"].get("type") != "offer":
                continue
            pc = self.connect()
            self.pcs.append(pc)
            await pc.setRemoteDescription(RTCSessionDescription(**message["data"]))
            pc.addTrack(ColourTrack(self.colour))
            pc.addTrack(ToneTrack())
            await pc.setLocalDescription(await pc.createAnswer())
            answer = {"type": "answer", "sdp": pc.localDescription.sdp}
            ack = await self.client.call(
                "rtc:signal", {"consult_id": self.consult_id, "to": message["from"], "data": answer}
            )
            assert ack == {"ok": True}, ack

    async def close(self) -> None:
        self.task.cancel()
        for pc in self.pcs:
            await pc.close()


async def recorded_call(
    clients: Any, a: Instance, b: Instance, consent: dict[str, Any] | None = None
) -> tuple[Client, Client, str, list[Participant]]:
    clinician = await clients(a, "bavi.clinician")
    surgeon = await clients(b, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = await ask(clinician, **({"consent": consent} if consent else {}))
    await surgeon.next("consult:offer")
    ack = await surgeon.call("consult:accept", {"consult_id": consult["id"]})
    assert ack["ok"], ack
    await join(clinician, consult["id"])
    await join(surgeon, consult["id"])
    people = [Participant(clinician, consult["id"], RED), Participant(surgeon, consult["id"], GREEN)]
    return clinician, surgeon, consult["id"], people


async def until_connected(participants: list[Participant], count: int) -> None:
    for _ in range(300):
        pcs = [pc for p in participants for pc in p.pcs]
        if len(pcs) >= count and all(pc.connectionState == "connected" for pc in pcs):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the recorder did not connect to every participant")


async def fetch(instance: Instance, token: str, path: str, **headers: str) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}", **headers}) as http:
        async with http.get(instance.url + path) as resp:
            return resp.status, await resp.read(), resp.headers


def colours_and_sound(data: bytes) -> tuple[float, numpy.ndarray, float]:
    """The file's duration, its last full frame (RGB) and the loudness of its audio (RMS)."""
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video[0].codec_context.name == "vp8"
        assert container.streams.audio[0].codec_context.name == "opus"
        duration = container.duration / 1_000_000
        last = None
        for frame in container.decode(video=0):
            last = frame.to_ndarray(format="rgb24")
    with av.open(io.BytesIO(data)) as container:
        # Opus decodes to floats in [-1, 1]: as 16-bit samples, to compare with the tone's 8000.
        pcm = numpy.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]) * 32768
    assert last is not None
    return duration, last, float(numpy.sqrt(numpy.mean(pcm.astype(numpy.float64) ** 2)))


async def test_a_recorded_call_is_one_playable_file_of_both_participants(two_instances, clients, database_url) -> None:
    a, b = two_instances
    clinician, surgeon, consult_id, people = await recorded_call(clients, a, b)
    try:
        began = time.monotonic()  # the recording's clock starts while this is answered
        started = await surgeon.call("recording:start", {"consult_id": consult_id})
        assert started["ok"], started
        recording = started["recording"]
        assert recording["state"] == "recording" and recording["consult_id"] == consult_id
        joined = await until(clinician, "consult:peer-joined", lambda m: m["role"] == "recorder")
        assert joined["user"]["id"] == "recorder" and joined["role"] == "recorder"
        assert (await clinician.next("recording:updated"))["recording"]["id"] == recording["id"]
        again = await surgeon.call("recording:start", {"consult_id": consult_id})
        assert again["error"]["code"] == "conflict", again
        refused = await clinician.call("recording:stop", {"consult_id": consult_id})
        assert refused["error"]["code"] == "forbidden", refused  # only the chair
        await until_connected(people, 2)
        await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - began)))  # what is recorded: five seconds
        lasted = time.monotonic() - began  # and stops while this is answered
        stopped = await surgeon.call("recording:stop", {"consult_id": consult_id})
    finally:
        for person in people:
            await person.close()
    assert stopped["ok"], stopped
    done = stopped["recording"]
    assert done["state"] == "stopped" and done["bytes"] > 10_000 and len(done["sha256"]) == 64
    assert abs(done["duration_s"] - lasted) <= 1.0, (done, lasted)
    assert done["retain_until"][:4] == str(int(done["stopped_at"][:4]) + 10)
    left = await clinician.next("consult:peer-left")
    assert left["user"]["id"] == "recorder"

    # The file: whole, as recorded, both colours side by side, and sound.
    token = await login(a.url, "bavi.clinician")
    status, data, headers = await fetch(a, token, f"/api/recordings/{done['id']}/media")
    assert status == 200 and headers["Content-Type"] == "video/webm"
    assert hashlib.sha256(data).hexdigest() == done["sha256"] and len(data) == done["bytes"]
    duration, frame, loudness = colours_and_sound(data)
    assert abs(duration - done["duration_s"]) <= 1.0
    halves = [frame[:, :320].reshape(-1, 3).mean(axis=0), frame[:, 320:].reshape(-1, 3).mean(axis=0)]
    reds = [h for h in halves if h[0] > 2 * h[1] and h[0] > 60]
    greens = [h for h in halves if h[1] > 2 * h[0] and h[1] > 60]
    assert len(reds) == 1 and len(greens) == 1, halves
    assert loudness > 2000  # the tones (amplitude 8000), mixed; silence would be ~0

    # Range: the bytes asked for, from another instance.
    status, part, headers = await fetch(b, token, f"/api/recordings/{done['id']}/media", Range="bytes=100-1099")
    assert status == 206 and part == data[100:1100]
    assert headers["Content-Range"] == f"bytes 100-1099/{len(data)}"

    # The list, in order; a clinician of another hospital may not play it; deletion is refused.
    status, body, _ = await fetch(a, token, f"/api/consults/{consult_id}/recordings")
    assert status == 200 and [r["id"] for r in json.loads(body)["recordings"]] == [done["id"]]
    stranger = await login(a.url, "bavi.nurse")
    status, body, _ = await fetch(a, stranger, f"/api/recordings/{done['id']}/media")
    assert status == 403 and b'"forbidden"' in body
    admin = await login(a.url, "admin")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.delete(f"{a.url}/api/admin/recordings/{done['id']}") as resp:
            assert resp.status == 409 and "kept until" in (await resp.json())["error"]["message"]

    # The record, its minutes and its FHIR export list it (a DocumentReference with its SHA-256).
    status, body, _ = await fetch(a, token, f"/api/consults/{consult_id}")
    assert [r["id"] for r in json.loads(body)["recordings"]] == [done["id"]]
    status, minutes, _ = await fetch(a, token, f"/api/consults/{consult_id}/minutes")
    assert status == 200 and done["sha256"].encode() in minutes
    resources = assert_sound(await exported(a, consult_id))
    attachment = resources[f"DocumentReference/{done['id']}"]["content"][0]["attachment"]
    assert attachment["contentType"] == "video/webm" and attachment["url"].endswith(
        f"/api/recordings/{done['id']}/media"
    )

    # Ten years on: listed past retention; a legal hold keeps it; without one it is deleted.
    async with a.services.db.session() as session, session.begin():
        await session.execute(
            update(Recording).where(Recording.id == done["id"]).values(retain_until=utcnow() - timedelta(days=1))
        )
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "recordings-past-retention"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0 and done["id"] in listed.stdout, listed
    await recordings.set_hold(a.services.db, done["id"], True)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as http:
        async with http.delete(f"{a.url}/api/admin/recordings/{done['id']}") as resp:
            assert resp.status == 409 and "legal hold" in (await resp.json())["error"]["message"]
        await recordings.set_hold(a.services.db, done["id"], False)
        async with http.delete(f"{a.url}/api/admin/recordings/{done['id']}") as resp:
            assert resp.status == 200, await resp.text()
    status, _, _ = await fetch(a, token, f"/api/recordings/{done['id']}/media")
    assert status == 404

    # Audited: the start, the stop (chained with the file's SHA-256) and each playback allowed.
    async with a.services.db.session() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.target_id == done["id"]))).all()
    actions = [e.action for e in entries]
    assert actions.count("recording.play") == 2 and actions.count("recording.delete") == 1
    assert "recording.start" in actions and "recording.stop" in actions
    assert set(actions) <= set(audit.ACTIONS)
    assert (await chain.verify(a.services.db)).problem is None


async def test_without_consent_to_recording_it_is_refused_and_a_withdrawal_stops_it(
    start_instance, clients, any_database_url
) -> None:
    # On SQLite and PostgreSQL: a segment written, ended by its compare-and-set, chained.
    a, b = await start_instance(database=any_database_url), await start_instance(database=any_database_url)
    clinician, surgeon, consult_id, people = await recorded_call(clients, a, b, consent=ONLY_CONSULT)
    try:
        refused = await surgeon.call("recording:start", {"consult_id": consult_id})
        assert refused["error"]["code"] == "conflict" and "consented to recording" in refused["error"]["message"]
        op = {"consult_id": consult_id, "op_id": "consent-rec-1", "given_by": "patient", "method": "verbal"}
        given = await clinician.call("consult:consent", {**op, "scopes": ["consult", "recording"]})
        assert given["ok"], given
        started = await surgeon.call("recording:start", {"consult_id": consult_id})
        assert started["ok"], started
        await until_connected(people, 2)
        withdrawn = await clinician.call("consult:consent", {**op, "op_id": "consent-rec-2", "scopes": ["consult"]})
        assert withdrawn["ok"], withdrawn
        ended = await surgeon.next("recording:updated", within=20)
        while ended["recording"]["state"] == "recording":
            ended = await surgeon.next("recording:updated", within=20)
        assert ended["recording"]["state"] == "stopped" and ended["recording"]["sha256"]
        assert (await chain.verify(a.services.db)).problem is None
    finally:
        for person in people:
            await person.close()


async def enter_room(page: Page, from_home: bool = True) -> None:
    if from_home:
        await page.click(".card button.join")
    await page.click("button.prejoin-join")
    await page.wait_for_selector(".room .stage")


async def test_in_chromium_everyone_sees_the_recording_and_a_late_joiner_is_told(
    two_instances, browser, clients
) -> None:
    a, b = two_instances
    clinician = await signed_in(browser, a, "bavi.clinician")
    specialist = await signed_in(browser, b, "xanhpon.surgeon")
    await clinician.fill("input[name=ref]", "BV-2026-349")
    await give_consent(clinician, recording=True)
    await clinician.click("form button[type=submit]")
    await specialist.click(".card.offer button.accept")
    await enter_room(specialist, from_home=False)  # accepting opens the room's pre-join screen

    # The chair records; the badge says so.
    await specialist.click(".call-bar .recording-control")
    badge = ".recording-badge:not([hidden]):has-text('Đang ghi hình')"
    await specialist.wait_for_selector(badge)
    await specialist.wait_for_selector(".recording-control[aria-pressed=true]")
    assert await specialist.locator(".recording-notice:not([hidden])").count() == 0  # there when it began

    # The clinician joins late: told before sending anything, and no tile for the recorder.
    await enter_room(clinician)
    await clinician.wait_for_selector(".recording-notice:not([hidden]):has-text('đang được ghi hình')")
    await clinician.wait_for_selector(badge)
    assert await clinician.locator(".recording-control").count() == 0  # only the chair records
    await video_plays([clinician, specialist], REMOTE_VIDEO_PLAYS.replace(".tile", ".stage-tiles .tile"))
    assert await clinician.locator('.stage-tiles .tile:not([data-peer="self"])').count() == 1
    await shot(clinician, "recording-late-joiner")

    # Both browsers send the recorder their media, the picture capped at 360 lines.
    [live] = b.services.recordings.live.values()
    for _ in range(400):
        people = list(live.recorder.participants.values())
        if len(people) == 2 and all(p.video is not None and p.pc.connectionState == "connected" for p in people):
            assert all(p.video.height <= 360 for p in people), [(p.video.width, p.video.height) for p in people]
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the recorder did not connect to both browsers: {clinician.console[-20:]}")  # type: ignore[attr-defined]

    # On a 360 px phone the chair's bar, Record included, stays on screen.
    await specialist.set_viewport_size({"width": 360, "height": 740})
    wide = await specialist.evaluate(
        """() => [...document.querySelectorAll('.call-bar button, .recording-notice, .recording-badge')]
            .filter(el => el.getBoundingClientRect().right > 361).map(el => el.className)"""
    )
    assert wide == [], wide
    await shot(specialist, "recording-phone")
    await specialist.click(".call-bar .recording-control")
    for page in (clinician, specialist):
        await page.wait_for_selector(".recording-badge[hidden]", state="attached")

    # The record page plays it, streamed from a playback link (HTTP Range, no copy held whole).
    consult_id = await clinician.get_attribute(".room[data-consult]", "data-consult")
    await clinician.click(".call-bar .control.leave")
    await clinician.evaluate("(id) => { location.hash = `#/record/${id}`; }", consult_id)
    await clinician.click(".record-recordings button.play-recording")
    await clinician.wait_for_function(
        "() => { const v = document.querySelector('.record-recordings video'); return v && v.duration > 0; }"
    )
    src = await clinician.get_attribute(".record-recordings video", "src")
    assert src is not None and src.startswith("/api/recordings/") and "/media?ticket=" in src, src
    player = "document.querySelector('.record-recordings video')"
    await clinician.evaluate(f"() => {{ const v = {player}; v.muted = true; v.play(); }}")
    await clinician.wait_for_function(
        f"() => {{ const v = {player}; return v.readyState >= 2 && v.currentTime > 0; }}", timeout=20_000
    )

    # The round room too: its lead records once its patients consent; the badge is on the page.
    from tests.system.test_rounds import join as join_round
    from tests.system.test_rounds import new_round

    created = await new_round(a)  # at Ba Vì, led by xanhpon.icu, today
    team = await clients(a, "bavi.clinician")
    for number, patient in enumerate((await join_round(team, created["id"]))["round"]["patients"]):
        given = {"consult_id": patient["consult_id"], "op_id": f"browser-round-{number}", **CONSENT}
        assert (await team.call("consult:consent", given))["ok"]
    lead = await signed_in(browser, b, "xanhpon.icu")
    await lead.click(f'.card.round[data-round="{created["id"]}"] button.join-round')
    await lead.click("button.prejoin-join")
    await lead.wait_for_selector(f'.round-room[data-round="{created["id"]}"] .stage')
    await lead.click(".call-bar .recording-control")
    await lead.wait_for_selector(badge)
    await shot(lead, "recording-round-room")
    for page in (clinician, specialist, lead):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]


async def test_kill_9_of_the_recording_instance_leaves_a_playable_segment_and_the_next_follows(
    start_instance,
    children,  # noqa: F811  (the fixture imported above)
    clients,
    redis_url,
    database_url,
) -> None:
    doomed = await children(redis_url, database_url)
    survivor = await start_instance()
    clinician = await clients(survivor, "bavi.clinician")
    surgeon = Client()
    await surgeon.connect(doomed.url, await login(doomed.url, "xanhpon.surgeon"))
    try:
        await surgeon.next("session:state")
        consult = await ask(clinician)
        await surgeon.next("consult:offer")
        assert (await surgeon.call("consult:accept", {"consult_id": consult["id"]}))["ok"]
        await join(clinician, consult["id"])
        await join(surgeon, consult["id"])
        people = [Participant(clinician, consult["id"], RED), Participant(surgeon, consult["id"], GREEN)]
        started = await surgeon.call("recording:start", {"consult_id": consult["id"]})
        assert started["ok"], started
        await until_connected(people, 2)
        await asyncio.sleep(3)  # a first segment of a few seconds
        doomed.kill()
        # The survivor notices, closes the first segment as written and records the next one.
        first = await until(clinician, "recording:updated", lambda m: m["recording"]["state"] == "failed", within=30)
        second = await until(clinician, "recording:updated", lambda m: m["recording"]["segment"] == 2, within=30)
        assert first["recording"]["id"] == started["recording"]["id"] and first["recording"]["sha256"]
        assert second["recording"]["state"] == "recording"
        back = await clients(survivor, "xanhpon.surgeon")  # the specialist reconnects to the survivor
        await join(back, consult["id"])
        stopped = await back.call("recording:stop", {"consult_id": consult["id"]})
        assert stopped["ok"] and stopped["recording"]["segment"] == 2, stopped
    finally:
        for person in people:
            await person.close()
        await surgeon.close()

    token = await login(survivor.url, "bavi.clinician")
    status, body, _ = await fetch(survivor, token, f"/api/consults/{consult['id']}/recordings")
    segments = json.loads(body)["recordings"]
    assert [(r["segment"], r["state"]) for r in segments] == [(1, "failed"), (2, "stopped")]
    status, data, _ = await fetch(survivor, token, f"/api/recordings/{segments[0]['id']}/media")
    assert status == 200 and hashlib.sha256(data).hexdigest() == segments[0]["sha256"]
    with av.open(io.BytesIO(data)) as container:  # cut short, yet it plays up to its last cluster
        frames = sum(1 for _ in container.decode(video=0))
    # At least the clusters before the last (closed every second): what was cut off is its last one.
    assert frames >= 10 and segments[0]["duration_s"] >= 1.0, (frames, segments[0])


@pytest.mark.parametrize("transport", ["udp", "tls"])
async def test_a_relay_only_deployment_records_through_turn(
    start_instance, clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """With `ICE_TRANSPORT_POLICY=relay` the recorder, like the calls, reaches the participants
    through coturn only: its offer names relay candidates only, and the file holds their picture.
    Over UDP, and over TLS (`turns:`, on 443 in a deployment, for hospitals whose firewalls pass
    nothing else)."""
    turn = TurnServer(tmp_path, tls=transport == "tls").start()
    try:
        if transport == "tls":
            # The test's CA, trusted by OpenSSL's default context: aiortc's `turns:` on both ends.
            monkeypatch.setenv("SSL_CERT_FILE", str(turn.tls_ca))
        # The instance hands out this one address: a relay candidate can only come from it.
        await _record_through(start_instance, clients, turn, turn.tls_url if transport == "tls" else turn.udp_url)
    finally:
        turn.stop()


async def _record_through(start_instance, clients, turn: TurnServer, url: str) -> None:
    instance = await start_instance(**turn.settings(url))
    token = await login(instance.url, "bavi.clinician")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{instance.url}/api/ice-servers") as resp:
            network = await resp.json()
    assert [server["urls"] for server in network["ice_servers"]] == [[url]], network
    clinician = await clients(instance, "bavi.clinician")
    surgeon = await clients(instance, "xanhpon.surgeon")
    await surgeon.next("session:state")
    consult = await ask(clinician)
    await surgeon.next("consult:offer")
    assert (await surgeon.call("consult:accept", {"consult_id": consult["id"]}))["ok"]
    await join(clinician, consult["id"])
    person = Participant(clinician, consult["id"], RED, connect=lambda: relay_only(network))
    try:
        started = await surgeon.call("recording:start", {"consult_id": consult["id"]})
        assert started["ok"], started
        await until_connected([person], 1)
        offers = [pc.remoteDescription.sdp for pc in person.pcs]
        await asyncio.sleep(1.5)
        stopped = await surgeon.call("recording:stop", {"consult_id": consult["id"]})
    finally:
        await person.close()
    assert offers and all(candidate_types(sdp) == {"relay"} for sdp in offers), offers
    assert stopped["ok"] and stopped["recording"]["bytes"] > 1000, stopped
    status, data, _ = await fetch(instance, token, f"/api/recordings/{stopped['recording']['id']}/media")
    assert status == 200
    _, frame, _ = colours_and_sound(data)
    assert frame.reshape(-1, 3).max(axis=0)[0] > 150  # the clinician's red came through the relay


async def test_a_ward_round_is_recorded_by_its_lead_once_every_patient_consents(instance, clients) -> None:
    from tests.system.test_rounds import join as join_round
    from tests.system.test_rounds import new_round

    created = await new_round(instance)  # at Ba Vì, led by xanhpon.icu, today
    clinician = await clients(instance, "bavi.clinician")
    lead = await clients(instance, "xanhpon.icu")
    patients = (await join_round(clinician, created["id"]))["round"]["patients"]
    await join_round(lead, created["id"])
    ref = {"round_id": created["id"]}
    refused = await clinician.call("recording:start", ref)
    assert refused["error"]["code"] == "forbidden", refused  # the lead chairs the round
    refused = await lead.call("recording:start", ref)
    assert refused["error"]["code"] == "conflict" and "consented to recording" in refused["error"]["message"]
    for number, patient in enumerate(patients):
        consent = {"consult_id": patient["consult_id"], "op_id": f"round-consent-{number}", "given_by": "patient"}
        given = await clinician.call(
            "consult:consent", {**consent, "method": "verbal", "scopes": ["consult", "recording"]}
        )
        assert given["ok"], given
    started = await lead.call("recording:start", ref)
    assert started["ok"] and started["recording"]["round_id"] == created["id"], started
    joined = await until(clinician, "round:peer-joined", lambda m: m["role"] == "recorder")
    assert joined["user"] == {
        "id": "recorder",
        "role": "recorder",
        "name": "Ghi hình",
        "hospital": joined["user"]["hospital"],
    }
    stopped = await lead.call("recording:stop", ref)
    assert stopped["ok"] and stopped["recording"]["state"] == "stopped", stopped
    token = await login(instance.url, "bavi.clinician")
    status, body, _ = await fetch(instance, token, f"/api/rounds/{created['id']}/recordings")
    assert status == 200 and [r["id"] for r in json.loads(body)["recordings"]] == [started["recording"]["id"]]


async def test_an_instance_at_its_number_of_recordings_refuses_another(start_instance, clients) -> None:
    full = await start_instance(MAX_RECORDINGS="0")
    _clinician, surgeon, consult_id, people = await recorded_call(clients, full, full)
    try:
        refused = await surgeon.call("recording:start", {"consult_id": consult_id})
    finally:
        for person in people:
            await person.close()
    assert refused["error"]["code"] == "unavailable" and "recording as many calls" in refused["error"]["message"]
    assert full.services.recordings.live == {}
