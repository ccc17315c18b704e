"""Every Redis key and Socket.IO room name, built here and nowhere else.

Running instances and stored data depend on these spellings byte for byte: an instance started
from a newer build shares Redis with older ones during a rolling restart, and a key renamed here
would orphan what the others wrote (an offer never expires, a revoked user comes back). So a name
is changed here or not at all; `tests/live/test_keys.py` fails when a key or room is spelled
anywhere else in `server/` or `signaling/`.

Plain text in, text out: no I/O, no imports of the service, so every layer may use it (the
records name a round session's audience with it).
"""

from __future__ import annotations

from typing import Literal

CallKind = Literal["consult", "round"]

# Socket.IO rooms.


def user_room(user_id: str) -> str:
    """Every socket of one user, in the default namespace."""
    return f"user:{user_id}"


ROUND_AUDIENCE = "round-session:"


def round_audience(session_id: str) -> str:
    """Everyone in a round session's call, named like a user: every socket that joins the round's
    call also joins `user_room` of this, so events sent to "involved users" reach them too."""
    return f"{ROUND_AUDIENCE}{session_id}"


def round_audience_of(room: str) -> str | None:
    """The round session whose audience `room` is (`user:round-session:<id>`), else None."""
    prefix = user_room(ROUND_AUDIENCE)
    return room.removeprefix(prefix) if room.startswith(prefix) else None


def call_room(kind: CallKind, ref: str) -> str:
    """A call's Socket.IO room, also the name `live/rooms` keeps its peers under:
    `consult:<id>` or `round:<id>`."""
    return f"{kind}:{ref}"


def consult_room(consult_id: str) -> str:
    return call_room("consult", consult_id)


def round_room(round_id: str) -> str:
    return call_room("round", round_id)


def call_of(room: str) -> tuple[CallKind, str] | None:
    """(kind, id) of the call whose room this is; None for any other room."""
    kind, _, ref = room.partition(":")
    if kind == "consult" and ref:
        return "consult", ref
    if kind == "round" and ref:
        return "round", ref
    return None


def round_of_room(room: str) -> str | None:
    """The round whose call this room is; None for a consult's call or any other room."""
    found = call_of(room)
    return found[1] if found is not None and found[0] == "round" else None


def board_room(scope_key: str) -> str:
    """The supervisors' board of one scope (`Scope.key`), in `/monitor`."""
    return f"monitor:{scope_key}"


# Redis keys: the offer queues (live/offers).

OFFERS_DUE = "offers:due"  # sorted set: consult id -> when its offer lapses
IN_CONSULT = "in-consult"  # the specialists in an active consult
# `<user>|<round>` of the specialists in a ward round's call whom the server set busy for it.
IN_ROUND = "in-round"


def queue(specialty: str) -> str:
    """The waiting consults of a specialty, by urgency then age."""
    return f"queue:{specialty}"


def named_queue(specialist_id: str) -> str:
    """The waiting consults asked of one specialist by name."""
    return f"queue:named:{specialist_id}"


def offer_slot(specialist_id: str) -> str:
    """The one offer a specialist may hold at a time when only one may ring."""
    return f"offer:slot:{specialist_id}"


def offer(consult_id: str) -> str:
    """A consult's open offer: its version and when it lapses."""
    return f"offer:{consult_id}"


def offer_to(consult_id: str) -> str:
    """The specialists a consult's open offer rings."""
    return f"offer:{consult_id}:to"


def offers_to(specialist_id: str) -> str:
    """The consults whose offers ring one specialist."""
    return f"offers:to:{specialist_id}"


def declined(consult_id: str) -> str:
    """The specialists who declined a consult (not offered it again)."""
    return f"consult:{consult_id}:declined"


# Calls (live/rooms).

ROOMS_DROPPED = "rooms:dropped"  # peers whose sockets dropped, waiting to come back


def room_peers(room: str) -> str:
    """A call's peers: peer id -> the peer's record."""
    return f"room:{room}:peers"


def room_quality(room: str) -> str:
    """A call's last connection figures per peer."""
    return f"room:{room}:quality"


def room_links(room: str) -> str:
    """A call's links that carry audio only: `<sender peer id>|<receiver peer id>` -> "audio_only"
    (the sender stopped its video to the receiver because their link cannot carry it)."""
    return f"room:{room}:links"


def room_invited(room: str) -> str:
    """Who was invited into a call."""
    return f"room:{room}:invited"


def sid_peers(sid: str) -> str:
    """The calls one socket is in."""
    return f"sid:{sid}:peers"


# Presence (live/presence).

PRESENCE_SOCKETS = "presence:sockets"  # every connected socket, by when it lapses


def presence(user_id: str) -> str:
    """A user's chosen and shown status."""
    return f"presence:{user_id}"


def presence_conns(user_id: str) -> str:
    """A user's connected sockets, by when each lapses."""
    return f"presence:conns:{user_id}"


# Access (live/revocation).


def revoked(user_id: str) -> str:
    """Exists while this user is revoked."""
    return f"revoked:{user_id}"


def authz(user_id: str) -> str:
    """The version of this user's authorization."""
    return f"authz:{user_id}"


# Rate limits (live/ratelimit): a bucket's key is `ratelimit(name)`.


def ratelimit(name: str) -> str:
    return f"ratelimit:{name}"


def user_events(user_id: str) -> str:
    """The name of a user's event bucket (their Socket.IO events and signed-in HTTP requests)."""
    return f"events:{user_id}"


def login_by_username(username: str, place: str) -> str:
    """The name of the sign-in bucket of one username from one place (any case of the name)."""
    return f"login:user:{username.lower()}:{place}"


def login_by_address(place: str) -> str:
    """The name of the sign-in bucket of one place, whatever the username."""
    return f"login:addr:{place}"


# Leases and once-only marks.


def requesting(user_id: str) -> str:
    """Held while one user's consult request counts and writes (live/caps.one_at_a_time)."""
    return f"caps:requesting:{user_id}"


def precall_lease(user_id: str) -> str:
    """Held while one user's check of camera and microphone runs."""
    return f"precall:user:{user_id}"


def recording_of_call(room: str) -> str:
    """The id of the recording a call's recorder is writing: held, and renewed, by its instance
    (one recording per call); it lapses when that instance dies."""
    return f"recording:call:{room}"


def recording_claim(recording_id: str) -> str:
    """Held by the one instance that closes a recording whose instance died."""
    return f"recording:claim:{recording_id}"


def recording_auto(room: str) -> str:
    """Taken by the one instance that starts a consult's recording by itself (its hospital records
    its consults): both sides joining at once on two instances start one recording, not two."""
    return f"recording:auto:{room}"


RECORDING_WANTED = "recording:wanted"  # hash room → JSON: calls being recorded (to go on after a fault)


def recording_commands(recording_id: str) -> str:
    """The pub/sub channel of one recording's recorder peer: signals, peers leaving, stop."""
    return f"recording:commands:{recording_id}"


def recording_sid(recording_id: str) -> str:
    """The socket id a recorder peer is listed under in its call: no socket, a name."""
    return f"recorder:{recording_id}"


def round_starting(round_id: str, day: str) -> str:
    """Set once the `round:starting` notice of a round's occurrence on `day` (ISO date) went out."""
    return f"round:starting:{round_id}:{day}"


MONITOR_WATCHERS = "monitor:watchers"  # the boards open anywhere: `<scope key>|<sid>` by lapse time
LIVE_EPOCH = "live:epoch"  # which rebuild of the live state Redis holds (actions/recovery)
LIVE_REBUILDING = "live:rebuilding"  # held while one instance rebuilds it


# Not a Redis key but named like the rooms, so that a search for `round:` finds it here too: the
# op id (the database's unique guard) of a round patient's consult in one session.


def round_patient_op(session_id: str, patient_id: str) -> str:
    return f"round:{session_id}:{patient_id}"
