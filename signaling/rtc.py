"""The call of a consult: `consult:join`, `consult:leave`, `consult:invite`, `consult:uninvite`,
`rtc:signal`, `rtc:stats`.

The server relays WebRTC signaling between the peers of one call and nothing else: media flows
browser to browser (or through TURN). A newcomer sends the offers: every peer listed in its
join ack gets an offer from it, and answers.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from server import outbox
from server.actions import dispatch, recording
from server.contract.errors import AppError
from server.contract.validation import Id, Payload
from server.contract.views import Person
from server.live import keys
from server.live.rooms import MAX_PEERS, Peer, decode_peers
from server.outbox import Call, Event, To
from server.records import audit, consults
from server.records.models import Consult
from server.runtime import loops
from server.runtime.ice import call_network
from server.runtime.services import Services
from signaling.notes import note_page
from signaling.router import Caller, Router

log = logging.getLogger("telerounds.rtc")

router = Router("/")

MAX_SDP_CHARS = 64 * 1024
REPLACED_MESSAGE = "you joined this call from another tab or device; this one has left it"


class ConsultRef(Payload):
    consult_id: Id


class Invite(Payload):
    consult_id: Id
    user_id: Id


class SessionDescription(Payload):
    type: Literal["offer", "answer"]
    sdp: str
    # An offer that restarts ICE on the connection the two peers have (same DTLS session), rather
    # than one that makes the connection anew.
    restart: bool | None = None


class IceCandidateInit(Payload):
    candidate: Annotated[str, StringConstraints(max_length=2048)]
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=1024)] | None = None
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None


class IceCandidate(Payload):
    candidate: IceCandidateInit


class MediaState(Payload):
    """The sender's microphone, camera and screen share, so the other tiles show its badges."""

    audio: bool
    video: bool
    screen: bool


class Media(Payload):
    media: MediaState


class Link(Payload):
    """The sender stopped its video to the receiver because their link cannot carry it
    (`audio_only`), or sends it again (`ok`): both tiles say so, and the board shows the call."""

    link: Literal["audio_only", "ok"]


class Signal(Payload):
    consult_id: Id | None = None
    round_id: Id | None = None
    to: Id
    data: SessionDescription | IceCandidate | Media | Link


class Stats(Payload):
    consult_id: Id | None = None
    round_id: Id | None = None
    rtt_ms: Annotated[float, Field(ge=0, le=600_000)] | None = None
    loss_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    bitrate_kbps: Annotated[float, Field(ge=0, le=1_000_000)] | None = None
    width: Annotated[int, Field(ge=0, le=10_000)] | None = None
    height: Annotated[int, Field(ge=0, le=10_000)] | None = None
    fps: Annotated[float, Field(ge=0, le=1000)] | None = None
    audio_only: bool | None = None


def room_name(consult_id: str | None, round_id: str | None) -> str:
    """The room an `rtc:*` event is about: a consult's or a round's, exactly one of them."""
    if (consult_id is None) == (round_id is None):
        raise AppError("invalid", "give exactly one of consult_id or round_id")
    return keys.consult_room(consult_id) if consult_id is not None else keys.round_room(str(round_id))


async def join_room(caller: Caller, room: str, role: str) -> tuple[Peer, list[dict[str, Any]]]:
    """Join (or take back) a peer in `room`; tells the others. Returns the peer and the others."""
    services = caller.services
    status, peer, already, replaced = await services.rooms.join(room, _user(caller), role, caller.sid)
    services.board_changed()
    if status == "rejoined":
        services.metrics.reconnects.inc()
    if peer is not None and status != "new":  # its connections are made anew, with video
        await services.rooms.forget_links(room, peer.peer_id)
    if peer is None:
        raise AppError("conflict", f"this call is full: at most {MAX_PEERS} people can be in one call")
    assert services.sio is not None
    call = Call.of(room)
    if replaced is not None:
        # One seat per user: their other tab or device leaves the call (on whichever instance
        # holds it) and is told why; the others renegotiate with this socket, as after a drop.
        await services.sio.leave_room(replaced, room)
        name = call.pick("consult:replaced", "round:replaced")
        payload: dict[str, Any] = {**call.ref_field(), "peer_id": peer.peer_id, "message": REPLACED_MESSAGE}
        await outbox.send(services, [Event(name, payload, To.socket(replaced))])
    await services.sio.enter_room(caller.sid, room)
    if (round_id := keys.round_of_room(room)) is not None and caller.account.role == "specialist":
        async with outbox.sending(services) as events:
            await dispatch.entered_round(services, events, caller.account.id, round_id)
    others = [p.public() for p in already]
    if status == "new":
        await _timeline(services, room, "joined", caller.account.id)
    if status != "same":
        name = call.pick("consult:peer-joined", "round:peer-joined")
        payload = {**call.ref_field(), **peer.public(), "rejoined": status in ("rejoined", "replaced")}
        await outbox.send(services, [Event(name, payload, call, skip_sid=caller.sid)])
    return peer, others


async def leave_call(caller: Caller, room: str) -> None:
    """`consult:leave` / `round:leave`: the caller's socket leaves the call, if it is in it."""
    peer = await caller.services.rooms.peer_of_sid(room, caller.sid)
    if peer is not None:
        await leave_room(caller.services, room, peer)


async def leave_room(services: Services, room: str, peer: Peer) -> None:
    await services.rooms.leave(room, peer.peer_id)
    await services.rooms.forget_sid(peer.sid, room, peer.peer_id)
    assert services.sio is not None
    await services.sio.leave_room(peer.sid, room)
    await announce_left(services, room, peer.peer_id, peer.user)


async def announce_left(services: Services, room: str, peer_id: str, user: Person | None) -> None:
    call = Call.of(room)
    services.board_changed()
    name = call.pick("consult:peer-left", "round:peer-left")
    await outbox.send(services, [Event(name, {**call.ref_field(), "peer_id": peer_id, "user": user}, call)])
    if user is not None:
        await _timeline(services, room, "left", user["id"])
    await recording.peer_left(services, room, peer_id)
    await left_call(services, room, [user])


async def _timeline(services: Services, room: str, kind: str, user_id: str) -> None:
    """A consult call's `joined` / `left` line in the consult's timeline: the minutes count each
    participant's time in the call from them (a drop taken back within the grace period is neither)."""
    found = keys.call_of(room)
    if found is not None and found[0] == "consult":
        await consults.add_event(services.db, found[1], kind, user_id)


async def left_call(services: Services, room: str, users: list[Person | None]) -> None:
    """Specialists out of a round's call are free again for one-at-a-time offers."""
    if (round_id := keys.round_of_room(room)) is None:
        return
    async with outbox.sending(services) as events:
        for user in users:
            if user is not None and user["role"] == "specialist":
                await dispatch.left_round(services, events, user["id"], round_id)


def _user(caller: Caller) -> Person:
    return caller.account.person()


async def _active_consult(caller: Caller, consult_id: str) -> Consult:
    consult = await consults.get(caller.services.db, consult_id)
    if consult is None:
        raise AppError("not_found", "no such consult")
    invited = await caller.services.rooms.invited(keys.consult_room(consult_id), caller.account.id)
    account = caller.account
    if not consults.may_join(consult, account.id, account.role, account.hospital_id, invited):
        raise AppError("forbidden", "you are not a participant of this consult")
    if consult.status != "active":
        raise AppError("conflict", f"the consult is {consult.status}, not in progress")
    return consult


@router.on("consult:join", ConsultRef)
async def consult_join(caller: Caller, payload: ConsultRef) -> dict[str, Any]:
    consult = await _active_consult(caller, payload.consult_id)
    role = "specialist" if caller.account.id == consult.specialist_id else caller.account.role
    room = keys.consult_room(consult.id)
    peer, others = await join_room(caller, room, role)
    account = caller.account
    if not consults.may_join(consult, account.id, account.role, account.hospital_id, False):
        # Here by invitation only: look again now that the peer is in. A withdrawal removes the
        # invitation before it sweeps the call, so either this sees it or the sweep sees the peer.
        if not await caller.services.rooms.invited(room, account.id):
            await leave_room(caller.services, room, peer)
            raise AppError("forbidden", "your invitation to this consult was withdrawn")
    recording.joined(caller.services, consult.id)  # a hospital that records its consults
    return {
        "consult": await dispatch.describe(caller.services, consult),
        "peer_id": peer.peer_id,
        "peers": others,
        **call_network(caller.services.settings, caller.account.id),
        **await _notes(caller, consult),
    }


async def _notes(caller: Caller, consult: Consult) -> dict[str, Any]:
    """`{notes, next_cursor}`: the first page of the notes so far, so a joining screen shows the
    record at once; it fetches the rest with `note:list {cursor}` (the read is audited)."""
    answer = await note_page(caller, [consult.id])
    await audit.record(caller.services.db, caller.account.id, "notes.list", "consult", consult.id, caller.address)
    return answer


@router.on("consult:leave", ConsultRef)
async def consult_leave(caller: Caller, payload: ConsultRef) -> dict[str, Any]:
    await leave_call(caller, keys.consult_room(payload.consult_id))
    return {}


async def _party_consult(caller: Caller, consult_id: str) -> Consult:
    """The active consult whose requester or accepted specialist the caller is."""
    consult = await consults.get(caller.services.db, consult_id)
    if consult is None:
        raise AppError("not_found", "no such consult")
    if caller.account.id not in (consult.requester_id, consult.specialist_id):
        raise AppError(
            "forbidden", "only the clinician who asked and the accepted specialist invite to a consult or withdraw"
        )
    if consult.status != "active":
        raise AppError("conflict", f"the consult is {consult.status}, not in progress")
    return consult


@router.on("consult:invite", Invite)
async def consult_invite(caller: Caller, payload: Invite) -> dict[str, Any]:
    consult = await _party_consult(caller, payload.consult_id)
    db = caller.services.db
    who = await consults.people(db, [payload.user_id, consult.specialist_id])
    invitee = who.get(payload.user_id)
    if invitee is None or invitee["role"] not in ("specialist", "clinician"):
        raise AppError("not_found", "no such specialist or clinician")
    # The two hospitals' networks: each hospital and those sister-linked to it. A stranger to
    # both (another province's hospital, say) is not brought to the patient's record this way.
    parties = {consult.hospital_id}
    if consult.specialist_id in who:
        parties.add(who[consult.specialist_id]["hospital"]["id"])
    if invitee["hospital"]["id"] not in await consults.networks(db, parties):
        raise AppError(
            "forbidden", "only people of the two hospitals and their sister hospitals can be invited to this consult"
        )
    await caller.services.rooms.invite(keys.consult_room(consult.id), payload.user_id)
    await consults.add_event(db, consult.id, "invited", caller.account.id, {"user_id": payload.user_id})
    view = await dispatch.describe(caller.services, consult)
    invited = Event("consult:invited", {"consult": view, "by": _user(caller)}, To.user(payload.user_id))
    await outbox.send(caller.services, [invited])
    return {}


@router.on("consult:uninvite", Invite)
async def consult_uninvite(caller: Caller, payload: Invite) -> dict[str, Any]:
    """Withdraw an invitation: the user loses the consult (its call, notes and record) at once;
    one who still takes part otherwise (a clinician of the requesting hospital) keeps it."""
    consult = await _party_consult(caller, payload.consult_id)
    services = caller.services
    room = keys.consult_room(consult.id)
    view = await dispatch.describe(services, consult)
    if not await services.rooms.invited(room, payload.user_id):
        return {"consult": view}  # never invited, or withdrawn already: nothing to do
    # The timeline first: what Redis loses is rebuilt from it (server/actions/recovery.py).
    await consults.add_event(services.db, consult.id, "uninvited", caller.account.id, {"user_id": payload.user_id})
    await services.rooms.uninvite(room, payload.user_id)
    who = (await consults.people(services.db, [payload.user_id])).get(payload.user_id)
    still = who is not None and consults.may_join(consult, who["id"], who["role"], who["hospital"]["id"], False)
    if not still:
        for peer in await services.rooms.peers(room):
            if peer.user["id"] == payload.user_id:
                await leave_room(services, room, peer)
    uninvited = {"consult_id": consult.id, "by": _user(caller)}
    await outbox.send(services, [Event("consult:uninvited", uninvited, To.user(payload.user_id))])
    return {"consult": view}


def _signal_room_peers(signal: Signal) -> str:
    return keys.room_peers(room_name(signal.consult_id, signal.round_id))


# The hot path of a call: the room's peers (a call has at most MAX_PEERS, each record names its
# socket) come with the event's admission, one Redis round trip for both ends of the relay.
@router.on("rtc:signal", Signal, reads=_signal_room_peers)
async def rtc_signal(caller: Caller, payload: Signal) -> dict[str, Any]:
    room = room_name(payload.consult_id, payload.round_id)
    if isinstance(payload.data, SessionDescription) and len(payload.data.sdp) > MAX_SDP_CHARS:
        raise AppError("too_large", f"sdp must be at most {MAX_SDP_CHARS} characters")
    assert caller.read is not None
    sender = target = None
    for peer in decode_peers(caller.read.values()):
        if peer.sid == caller.sid:
            sender = peer
        if peer.peer_id == payload.to:
            target = peer
    if sender is None:
        raise AppError("forbidden", "join the call before signaling")
    if target is None or target.peer_id == sender.peer_id:
        raise AppError("not_found", "no such peer in this call")
    if target.dropped_at is not None:
        raise AppError("conflict", "that peer is reconnecting; it will send a new offer when back")
    data = payload.data.model_dump(exclude_none=True)
    if target.role == "recorder":
        # The server's recorder peer has no socket: the signal goes to the instance writing it.
        await recording.relay(caller.services, target, sender, data)
        return {}
    signal = {**Call.of(room).ref_field(), "from": sender.peer_id, "data": data}
    # To one socket: the outbox sends it straight to a peer on this instance, through Redis to others.
    await outbox.send(caller.services, [Event("rtc:signal", signal, To.socket(target.sid, caller.namespace))])
    caller.services.metrics.relayed.inc()
    if isinstance(payload.data, Link):  # the supervisors' board shows calls on audio only
        await caller.services.rooms.set_link(room, sender.peer_id, target.peer_id, payload.data.link)
        caller.services.board_changed()
    return {}


@router.on("rtc:stats", Stats)
async def rtc_stats(caller: Caller, payload: Stats) -> dict[str, Any]:
    room = room_name(payload.consult_id, payload.round_id)
    peer = await caller.services.rooms.peer_of_sid(room, caller.sid)
    if peer is None:
        raise AppError("forbidden", "join the call before reporting its quality")
    sample = payload.model_dump(exclude={"consult_id", "round_id"}, exclude_none=True)
    await caller.services.rooms.report_quality(room, peer.peer_id, sample)
    caller.services.board_changed()
    return {}


async def socket_gone(services: Services, sid: str) -> None:
    """A socket disconnected: its peers wait out the grace period before they leave their calls."""
    dropped = await services.rooms.drop_sid(sid, services.settings.reconnect_grace_s)
    for room, peer in dropped:
        call = Call.of(room)
        name = call.pick("consult:peer-reconnecting", "round:peer-reconnecting")
        payload = {**call.ref_field(), "peer_id": peer.peer_id, "user": peer.user}
        await outbox.send(services, [Event(name, payload, call)])
    if dropped and services.settings.reconnect_grace_s <= 0:
        await remove_lapsed(services)


async def remove_lapsed(services: Services) -> None:
    for room, peer in await services.rooms.due_removals(time.time()):
        await announce_left(services, room, peer.peer_id, peer.user)


async def grace_clock(services: Services, interval_s: float = 0.2) -> None:
    """Runs on every instance; each lapsed peer is removed by one of them."""
    await loops.every(interval_s, lambda: remove_lapsed(services), "removing lapsed peers")
