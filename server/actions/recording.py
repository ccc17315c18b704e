"""Recording a consult's or a round's call at the server (`recording:start`, `recording:stop`).

The chair (the accepted specialist of a consult, the lead of a round) starts and stops it; the
patient's consent to `recording` is needed (a round: every patient consult of its session) and
a withdrawal stops it. The instance that starts it joins the call with a recorder peer
(server/media/recorder.py) listed as `{"id": "recorder", "role": "recorder", ...}`; it offers
to each participant, and its file is written in the shared blob folder while it runs, then
stored in the blob store under its SHA-256 when it ends (server/records/recordings.py).

Instances reach a recorder through Redis: a participant's `rtc:signal` to it, a peer leaving, a
stop asked on another instance are messages on its channel (`keys.recording_commands`). The
instance holds `keys.recording_of_call` for as long as it records, renewing it: when it dies
the key lapses, and another instance's watch closes the segment as it was written (`failed`,
still playable) and, while the call goes on, records its next segment.

Like a clock, this module sends its events as it goes (`recording:updated`, the recorder's
`*:peer-joined` / `*:peer-left`): a recording ends on its own (consent withdrawn, the call
over, a fault) as often as by a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from server import outbox
from server.contract.errors import AppError
from server.contract.views import Person, RecordingView, hospital_ref, person, recording_view
from server.live import keys
from server.live.rooms import Peer
from server.media.live import Live
from server.media.recorder import Recorder
from server.outbox import Call, Event, To
from server.policy import consent as consent_policy
from server.policy import recording as recording_policy
from server.policy import rounds as round_policy
from server.policy.recording import InCall
from server.records import consults, recordings
from server.records import rounds as round_records
from server.records.blobs import file_chunks
from server.records.models import Recording, new_id, utcnow
from server.records.users import Account
from server.runtime.ice import server_peer_configuration

if TYPE_CHECKING:
    from server.runtime.services import Services

log = logging.getLogger("telerounds.recording")

# The recorder as the call's peers list shows it: no account, no hospital of its own.
RECORDER: Person = person("recorder", "Ghi hình", "recorder", hospital_ref("", "", ""))
ALIVE_S = 4.0  # how long a dead instance's recording goes unnoticed, at most (plus one watch)
STOP_WAIT_S = 20.0  # a stop asked on another instance: how long its answer is awaited
# Why a recording started with nobody asking: its hospital records its consults (the timeline's
# and the audit's code for it; the record page says it in words, `timeline.reason.*`).
AUTOMATIC = "hospital_setting"
AUTO_CLAIM_S = 60  # long enough for the first instance to write the recording's row
MAX_BYTES = 64 * 1024**3  # one segment's file: far beyond hours of 600 kbps


# Renew the call's key for this recording: 1 it was ours, 2 it had lapsed (taken again), 0 another
# recording holds the call now (this instance stalled past ALIVE_S and the call went on without it).
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] or not held then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  if held then return 1 end
  return 2
end
return 0
"""
# Let the call's key go, if it is still this recording's.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_spawned: set[asyncio.Task[Any]] = set()


def _spawn(work: Any) -> None:
    """Run `work` on its own (a recording ending from inside one of its own tasks)."""
    task = asyncio.ensure_future(work)
    _spawned.add(task)
    task.add_done_callback(_spawned.discard)


async def close_all(services: Services) -> None:
    """The instance stops: each recording it writes ends as `failed` (cut short by the shutdown;
    the call, if it goes on, is recorded on by another instance as its next segment)."""
    for live in list(services.recordings.live.values()):
        with contextlib.suppress(Exception):
            await _finish(services, live, "failed", None, "the server stopped")


def _room(consult_id: str | None, round_id: str | None) -> str:
    if (consult_id is None) == (round_id is None):
        raise AppError("invalid", "give exactly one of consult_id or round_id")
    return keys.consult_room(consult_id) if consult_id is not None else keys.round_room(str(round_id))


async def _chair_call(services: Services, account: Account, room: str) -> None:
    """The caller chairs this call, and its patients consent to recording; else the refusal."""
    kind, ref = Call.of(room).kind, Call.of(room).ref
    if kind == "consult":
        consult = await consults.get(services.db, ref)
        if consult is None:
            raise AppError("not_found", "no such consult")
        if account.id != consult.specialist_id:
            raise AppError(
                "forbidden", "only the accepted specialist, who chairs the consult, starts or stops its recording"
            )
        if consult.status != "active":
            raise AppError("conflict", f"the consult is {consult.status}, not in progress")
        if not consent_policy.consents_to((consult.consent or {}).get("scopes"), "recording"):
            raise AppError("conflict", "the patient has not consented to recording; record their consent first")
        return
    item = await round_records.get(services.db, ref)
    if not round_policy.is_lead(item, account.id):
        raise AppError("forbidden", "only the round's lead, who chairs it, starts or stops its recording")
    await _round_consents(services, ref)


async def _round_consents(services: Services, round_id: str) -> None:
    held = await round_records.active_session(services.db, round_id)
    if held is None:
        raise AppError("conflict", "the round is not in progress")
    for consult in (await round_records.session_consults(services.db, held.id)).values():
        if not consent_policy.consents_to((consult.consent or {}).get("scopes"), "recording"):
            raise AppError("conflict", "a patient of this round has not consented to recording")


async def start(
    services: Services, account: Account, consult_id: str | None, round_id: str | None, address: str
) -> RecordingView:
    room = _room(consult_id, round_id)
    await _chair_call(services, account, room)
    return await _begin(services, room, account.id, 1, address)


async def _begin(
    services: Services, room: str, started_by: str, segment: int, address: str = "", reason: str = ""
) -> RecordingView:
    settings = services.settings
    if len(services.recordings.live) >= settings.max_recordings:
        raise AppError(
            "unavailable",
            f"this server is recording as many calls as it can at once ({settings.max_recordings}); "
            "try again when one of them ends",
        )
    participants = [p for p in await services.rooms.peers(room) if p.role != "recorder" and p.dropped_at is None]
    if not participants:
        raise AppError("conflict", "nobody is in the call to record")
    call = Call.of(room)
    recording_id = new_id()
    path = _file_of(services, recording_id)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    # One recording per call, across instances: the key is taken before anything is written.
    claim = keys.recording_of_call(room)
    if not await services.redis.set(claim, "starting", nx=True, ex=int(ALIVE_S)):
        raise AppError("conflict", "this call is being recorded already")
    recorder: Recorder | None = None
    try:
        row = await recordings.create(
            services.db,
            recording_id,
            consult_id=call.ref if call.kind == "consult" else None,
            round_id=call.ref if call.kind == "round" else None,
            segment=segment,
            started_by=started_by,
            path=str(path),
            retention_years=settings.recording_retention_years,
            address=address,
            reason=reason,
        )
        await services.redis.set(claim, row.id, ex=int(ALIVE_S))
        await services.redis.hset(
            keys.RECORDING_WANTED, room, json.dumps({"started_by": started_by, "segment": segment})
        )
        # The calls' ICE servers and policy: relay-only deployments record through TURN too.
        configuration = server_peer_configuration(settings, "recorder")
        sid = keys.recording_sid(row.id)
        recorder = Recorder(path, configuration, lambda to, data: _send(services, room, row.id, to, data))
        await recorder.start()
        joined = await services.rooms.join(room, RECORDER, "recorder", sid)
        assert joined.peer is not None
        live = Live(row, room, joined.peer, recorder, [])
        services.recordings.live[row.id] = live
        pubsub = services.redis.pubsub()
        await pubsub.subscribe(keys.recording_commands(row.id))
        live.tasks.append(asyncio.create_task(_listen(services, live, pubsub)))
        live.tasks.append(asyncio.create_task(_keep(services, live)))
    except BaseException:
        # Not started: nothing goes on recording this call (a row written is closed by the watch).
        services.recordings.live.pop(recording_id, None)
        if recorder is not None:
            await recorder.stop()
        await services.redis.delete(claim)
        await services.redis.hdel(keys.RECORDING_WANTED, room)
        raise
    view = recording_view(row)
    name = call.pick("consult:peer-joined", "round:peer-joined")
    joined_event = Event(
        name,
        {**call.ref_field(), **live.peer.public(), "rejoined": False},
        call,
    )
    await outbox.send(services, [joined_event, Event("recording:updated", {"recording": view}, call)])
    for other in joined.others:
        if other.role != "recorder" and other.dropped_at is None:
            await recorder.offer_to(other.peer_id)
    return view


def _file_of(services: Services, recording_id: str) -> Path:
    """A recording's file while it is written: in the blob folder every instance mounts."""
    return services.settings.blob_dir / "recording" / f"{recording_id}.webm"


async def _send(services: Services, room: str, recording_id: str, to: str, data: dict[str, Any]) -> None:
    """The recorder's signal to a participant: to their socket, wherever it is connected."""
    peer = await services.rooms.peer(room, to)
    live = services.recordings.live.get(recording_id)
    if peer is None or peer.dropped_at is not None or live is None:
        return
    signal = {**Call.of(room).ref_field(), "from": live.peer.peer_id, "data": data}
    await outbox.send(services, [Event("rtc:signal", signal, To.socket(peer.sid, "/"))])


async def relay(services: Services, target: Peer, sender: Peer, data: dict[str, Any]) -> None:
    """A participant's `rtc:signal` to a recorder peer: on to the instance that holds it."""
    recording_id = target.sid.removeprefix(keys.recording_sid(""))
    message = {"kind": "signal", "from": sender.peer_id, "data": data}
    await services.redis.publish(keys.recording_commands(recording_id), json.dumps(message))


async def _listen(services: Services, live: Live, pubsub: Any) -> None:
    try:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                command = json.loads(message["data"])
                if command["kind"] == "signal":
                    await live.recorder.signal(str(command["from"]), dict(command["data"]))
                elif command["kind"] == "left":
                    await live.recorder.drop(str(command["peer_id"]))
                elif command["kind"] == "stop":
                    _spawn(_finish(services, live, "stopped", command.get("by"), command.get("reason", "")))
            except Exception as error:
                log.warning("recording %s: command dropped: %s", live.row.id, error)
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()


async def _keep(services: Services, live: Live) -> None:
    """Renew the call's recording key; end the recording when its call is over (the room was
    closed, or everyone left)."""
    claim = keys.recording_of_call(live.room)
    alone_since: float | None = None
    while True:
        await asyncio.sleep(ALIVE_S / 3)
        try:
            held = await services.redis.register_script(_RENEW)(keys=[claim], args=[live.row.id, int(ALIVE_S)])
            if held == 0 or (held == 2 and not await _still_recording(services, live.row.id)):
                # Closed meanwhile by another instance, which took the call on: this one just ends.
                _spawn(_finish(services, live, "failed", None, "another instance took the recording over"))
                return
            if live.recorder.failed is not None:
                # Not recorded on as a next segment: the store it writes to is what failed.
                await services.redis.hdel(keys.RECORDING_WANTED, live.room)
                _spawn(_finish(services, live, "failed", None, live.recorder.failed))
                return
            peers = await services.rooms.peers(live.room)
            if all(p.peer_id != live.peer.peer_id for p in peers):
                _spawn(_finish(services, live, "stopped", None, "the call ended"))
                return
            others = [p for p in peers if p.role != "recorder"]
            alone_since = None if others else (alone_since or time.monotonic())
            if alone_since is not None and time.monotonic() - alone_since > services.settings.reconnect_grace_s:
                _spawn(_finish(services, live, "stopped", None, "everyone left the call"))
                return
        except Exception as error:  # Redis down for a moment: try again at the next turn
            log.warning("recording %s: keeping it alive failed: %s", live.row.id, error)


async def _still_recording(services: Services, recording_id: str) -> bool:
    row = await recordings.get(services.db, recording_id)
    return row is not None and row.state == "recording"


async def _finish(services: Services, live: Live, state: str, actor_id: str | None, reason: str) -> Recording | None:
    """End a recording this instance writes: the file into the blob store, the row's end, the
    recorder out of the call, everyone told."""
    if live.stopping:
        return None
    live.stopping = True
    for task in live.tasks:
        if task is not asyncio.current_task():
            task.cancel()
    duration = await live.recorder.stop()
    services.recordings.live.pop(live.row.id, None)
    row = await _close_file(services, live.row, state, duration, actor_id, reason)
    if state == "stopped":
        await services.redis.hdel(keys.RECORDING_WANTED, live.room)
    await services.redis.register_script(_RELEASE)(keys=[keys.recording_of_call(live.room)], args=[live.row.id])
    await _remove_peer(services, live.room, live.peer)
    log.info("recording %s %s: %s", live.row.id, state, reason)
    return row


async def _close_file(
    services: Services, row: Recording, state: str, duration: float | None, actor_id: str | None, reason: str
) -> Recording | None:
    # Under this instance's own BLOB_DIR: the folder is shared, its mount point may differ.
    path = _file_of(services, row.id)
    sha256: str | None = None
    size: int | None = None
    present = await asyncio.to_thread(path.is_file)
    if present:
        if duration is None:
            duration = await asyncio.to_thread(_duration_of, path)
        sha256, size = await services.blobs.put(file_chunks(path), MAX_BYTES)
    ended = await recordings.finish(
        services.db,
        row.id,
        state,
        sha256=sha256,
        size=size,
        duration_s=duration or 0.0,
        actor_id=actor_id,
        retention_years=services.settings.recording_retention_years,
        reason=reason,
    )
    if ended is not None:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        call = Call.of(_room(ended.consult_id, ended.round_id))
        await outbox.send(services, [Event("recording:updated", {"recording": recording_view(ended)}, call)])
    return ended


def _duration_of(path: Path) -> float:
    """How long a file cut short plays: its last packet's time (it has no duration written)."""
    last = 0.0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux():
                if packet.pts is not None and packet.time_base is not None:
                    last = max(last, float(packet.pts * packet.time_base))
    except av.error.FFmpegError:
        pass  # the cut-off end of the last cluster: what came before counts
    return last


async def _remove_peer(services: Services, room: str, peer: Peer) -> None:
    """The recorder's peer leaves the call, unless the seat is now another recording's (a next
    segment's recorder takes the seat of the one it follows)."""
    current = await services.rooms.peer(room, peer.peer_id)
    if current is not None and current.sid == peer.sid and await services.rooms.leave(room, peer.peer_id):
        call = Call.of(room)
        name = call.pick("consult:peer-left", "round:peer-left")
        await outbox.send(
            services, [Event(name, {**call.ref_field(), "peer_id": peer.peer_id, "user": peer.user}, call)]
        )
    await services.rooms.forget_sid(peer.sid, room, peer.peer_id)


async def active(services: Services, room: str) -> Recording | None:
    call = Call.of(room)
    found = await recordings.of_call(services.db, **{f"{call.kind}_id": call.ref})
    return next((r for r in reversed(found) if r.state == "recording"), None)


async def stop(services: Services, account: Account | None, room: str, reason: str) -> Recording | None:
    """Stop the call's recording wherever it is written; the ended row (None: none was running)."""
    row = await active(services, room)
    if row is None:
        return None
    await services.redis.hdel(keys.RECORDING_WANTED, room)
    actor = account.id if account is not None else None
    live = services.recordings.live.get(row.id)
    if live is not None:
        await _finish(services, live, "stopped", actor, reason)
    elif await services.redis.get(keys.recording_of_call(room)) == row.id:
        message = {"kind": "stop", "by": actor, "reason": reason}
        await services.redis.publish(keys.recording_commands(row.id), json.dumps(message))
    else:
        await _recover(services, row)
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        ended = await recordings.get(services.db, row.id)
        if ended is not None and ended.state != "recording":
            return ended
        await asyncio.sleep(0.1)
    raise AppError("unavailable", "the recording did not stop in time; try again")


async def request_stop(
    services: Services, account: Account, consult_id: str | None, round_id: str | None
) -> RecordingView:
    room = _room(consult_id, round_id)
    call = Call.of(room)
    if call.kind == "consult":
        consult = await consults.get(services.db, call.ref)
        if consult is None:
            raise AppError("not_found", "no such consult")
        if account.id != consult.specialist_id:
            raise AppError(
                "forbidden", "only the accepted specialist, who chairs the consult, starts or stops its recording"
            )
    elif not round_policy.is_lead(await round_records.get(services.db, call.ref), account.id):
        raise AppError("forbidden", "only the round's lead, who chairs it, starts or stops its recording")
    ended = await stop(services, account, room, "stopped by the chair")
    if ended is None:
        raise AppError("conflict", "this call is not being recorded")
    return recording_view(ended)


def joined(services: Services, consult_id: str) -> None:
    """Someone joined a consult's call: if its hospital records its consults and both sides are
    in, the recording starts by itself. On its own task, so the join is answered first."""
    _spawn(_start_by_itself(services, consult_id))


async def _start_by_itself(services: Services, consult_id: str) -> None:
    try:
        await start_by_itself(services, consult_id)
    except Exception as error:  # the call goes on unrecorded; the chair may still start it
        log.warning("consult %s: the recording did not start by itself: %s", consult_id, error)


async def start_by_itself(services: Services, consult_id: str) -> RecordingView | None:
    """Start the consult's recording with nobody asking, in the accepted specialist's name (the
    chair), when server/policy/recording.py says so; once per consult, across instances. None:
    not started (not wanted, no consent, one side missing, recorded already)."""
    consult = await consults.get(services.db, consult_id)
    if consult is None or consult.status != "active" or consult.specialist_id is None:
        return None
    if not await recordings.records_consults(services.db, consult.hospital_id):
        return None  # most hospitals: nothing more to read
    room = keys.consult_room(consult.id)
    peers = [p for p in await services.rooms.peers(room) if p.role != "recorder" and p.dropped_at is None]
    in_call = [InCall(p.user["id"], p.user["hospital"]["id"]) for p in peers]
    before = bool(await recordings.of_call(services.db, consult_id=consult.id))
    scopes = (consult.consent or {}).get("scopes")
    if not recording_policy.starts_by_itself(True, scopes, consult.hospital_id, consult.specialist_id, in_call, before):
        return None
    # Both sides joining at once on two instances: one of them starts it. The rows written
    # meanwhile keep it from starting again once the claim lapses.
    claim = keys.recording_auto(room)
    if not await services.redis.set(claim, "1", nx=True, ex=AUTO_CLAIM_S):
        return None
    try:
        return await _begin(services, room, consult.specialist_id, 1, reason=AUTOMATIC)
    except AppError as error:
        await services.redis.delete(claim)  # a later join may try again (a full instance, say)
        log.info("consult %s: the recording did not start by itself: %s", consult.id, error.message)
        return None


async def consent_changed(services: Services, consult_id: str, scopes: list[str], round_session_id: str | None) -> None:
    """Consent to recording withdrawn: the consult's recording (and its round's) stops now.
    Given while both sides are in the call of a hospital that records its consults: it starts."""
    if consent_policy.consents_to(scopes, "recording"):
        joined(services, consult_id)
        return
    await stop(services, None, keys.consult_room(consult_id), "consent to recording withdrawn")
    if round_session_id is not None:
        held = await round_records.session_of(services.db, round_session_id)
        if held is not None:
            await stop(services, None, keys.round_room(held.round_id), "consent to recording withdrawn")


async def peer_left(services: Services, room: str, peer_id: str) -> None:
    """A participant left the call: its recorder (on whichever instance) drops their tile."""
    recording_id = await services.redis.get(keys.recording_of_call(room))
    if recording_id:
        await services.redis.publish(
            keys.recording_commands(str(recording_id)), json.dumps({"kind": "left", "peer_id": peer_id})
        )


async def _recover(services: Services, row: Recording) -> None:
    """A recording whose instance died: closed as written (`failed`), by one instance; the
    recorder it left in the call is removed."""
    if not await services.redis.set(keys.recording_claim(row.id), "1", nx=True, ex=120):
        return
    room = _room(row.consult_id, row.round_id)
    await _close_file(services, row, "failed", None, None, "the instance recording it stopped answering")
    for peer in await services.rooms.peers(room):
        if peer.sid == keys.recording_sid(row.id):
            await _remove_peer(services, room, peer)


async def watch(services: Services) -> None:
    """One turn of every instance's watch: close the recordings of dead instances, and record
    the next segment of a call that was being recorded and goes on."""
    for row in await recordings.unfinished(services.db):
        if row.id in services.recordings.live:
            continue
        room = _room(row.consult_id, row.round_id)
        if await services.redis.get(keys.recording_of_call(room)) in (row.id, "starting"):
            continue
        await _recover(services, row)
    for key, raw in (await services.redis.hgetall(keys.RECORDING_WANTED)).items():
        room = str(key)
        if await services.redis.exists(keys.recording_of_call(room)):
            continue
        wanted = json.loads(raw)
        try:
            await _continue(services, room, str(wanted["started_by"]), int(wanted["segment"]) + 1)
        except AppError as error:
            if error.code != "unavailable" and error.code != "conflict":
                await services.redis.hdel(keys.RECORDING_WANTED, room)
            log.info("recording of %s not continued: %s", room, error.message)


async def _continue(services: Services, room: str, started_by: str, segment: int) -> None:
    call = Call.of(room)
    if call.kind == "consult":
        consult = await consults.get(services.db, call.ref)
        if consult is None or consult.status != "active":
            await services.redis.hdel(keys.RECORDING_WANTED, room)
            return
        if not consent_policy.consents_to((consult.consent or {}).get("scopes"), "recording"):
            await services.redis.hdel(keys.RECORDING_WANTED, room)
            return
    else:
        if await round_records.active_session(services.db, call.ref) is None:
            await services.redis.hdel(keys.RECORDING_WANTED, room)  # the round is over
            return
        await _round_consents(services, call.ref)
    await _begin(services, room, started_by, segment)


async def watch_clock(services: Services, interval_s: float = 2.0) -> None:
    from server.runtime import loops

    await loops.every(interval_s, lambda: watch(services), "watching recordings")


async def readable(services: Services, account: Account, recording_id: str) -> Recording:
    """A recording whose record `account` may read (its consult's, or its round's); `not_found`
    for none (or one deleted), `forbidden` for someone who may not read that record."""
    from server.actions import access
    from server.actions import rounds as round_actions

    row = await recordings.get(services.db, recording_id)
    if row is None or row.deleted_at is not None:
        raise AppError("not_found", "no such recording")
    if row.consult_id is not None:
        await access.consult_for(services, account, row.consult_id, write=False)
    else:
        await round_actions.readable(services.db, account, str(row.round_id))
    return row


def media_path(services: Services, row: Recording) -> Path:
    """The finished recording's file in the blob store; `conflict` while it is being written."""
    if row.state == "recording" or row.sha256 is None:
        raise AppError("conflict", "this recording is still being made; it can be played once it stops")
    return services.blobs.path_of(row.sha256)


async def delete(services: Services, account: Account, recording_id: str, address: str) -> None:
    """Delete a recording past its retention (and under no legal hold); refused otherwise."""
    row = await recordings.get(services.db, recording_id)
    if row is None or row.deleted_at is not None:
        raise AppError("not_found", "no such recording")
    if row.state == "recording":
        raise AppError("conflict", "this recording is still being made")
    if row.legal_hold:
        raise AppError("conflict", "this recording is under a legal hold and is kept")
    if row.retain_until > utcnow():
        raise AppError(
            "conflict",
            f"a recording is kept until {row.retain_until.date().isoformat()} (its retention period); not deleted",
        )
    if row.sha256 is not None:
        path = services.blobs.path_of(row.sha256)
        await asyncio.to_thread(path.unlink, missing_ok=True)
    await recordings.mark_deleted(services.db, row.id, account.id, address)
