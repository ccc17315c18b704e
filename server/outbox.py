"""The one way out: every event a client receives is sent by `send`, and nowhere else.

An `Event` is a value: its name (spelled out in full where it is made, so a grep for
`consult:peer-joined` finds its sender), its payload and its audience. The audience is one of a
few kinds, made with `To`: a user or users (their `user:<id>` rooms: every tab and device of
theirs), a consult's or a round's call, the people whose screens show a consult, one socket, or
the supervisors' board of a scope. `send` turns an audience into Socket.IO rooms here, in one
place; every instance delivers them, through the Redis client manager (`signaling/redis_manager.py`).

Actions and handlers make events and hand them over; they never import socketio.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from server.live import keys
from server.live.keys import CallKind
from server.policy.scope import Scope
from server.records.consults import involved
from server.records.models import Consult
from server.runtime.services import Services

MONITOR = "/monitor"  # the supervisors' namespace
EVENT_NAME = re.compile(r"^[a-z]+:[a-z-]+$")


def board_room(scope: Scope) -> str:
    """One room per scope: a Department of Health's supervisors share their province's board."""
    return keys.board_room(scope.key)


@dataclass(frozen=True)
class Users:
    """Every socket of these users (`user:<id>` rooms), one user after another, in this order."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class Call:
    """Everyone in a consult's or a round's call (its Socket.IO room)."""

    kind: CallKind
    ref: str

    def __post_init__(self) -> None:
        if self.kind not in ("consult", "round") or not self.ref:
            raise ValueError(f"not a call: {self.kind!r} {self.ref!r}")

    @classmethod
    def of(cls, room: str) -> Call:
        """The call whose room this is (`consult:<id>` or `round:<id>`)."""
        call = keys.call_of(room)
        if call is None:
            raise ValueError(f"not a call's room: {room!r}")
        return cls(*call)

    @property
    def room(self) -> str:
        return keys.call_room(self.kind, self.ref)

    def pick(self, consult_event: str, round_event: str) -> str:
        """The event's name for this kind of call; both names are written out where events are made."""
        return consult_event if self.kind == "consult" else round_event

    def ref_field(self) -> dict[str, str]:
        """What payloads about a call name it by: `{consult_id}` or `{round_id}`."""
        return {"consult_id": self.ref} if self.kind == "consult" else {"round_id": self.ref}


@dataclass(frozen=True)
class Parties:
    """Everyone whose screen shows a consult: those involved in it (its requester, its specialist,
    a round's call when it is a round patient's), whoever is in its call now, and `also`."""

    consult: Consult
    also: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Socket:
    """One socket, wherever it is connected (in `namespace`)."""

    sid: str
    namespace: str = "/"


@dataclass(frozen=True)
class Board:
    """The supervisors whose scope is this one, in `/monitor`."""

    scope: Scope


Audience = Users | Call | Parties | Socket | Board


class To:
    """The audiences, by constructor: `To.user(id)`, `To.call("consult", id)`, `To.board(scope)` ..."""

    @staticmethod
    def user(user_id: str) -> Users:
        return Users((user_id,))

    @staticmethod
    def users(user_ids: Iterable[str]) -> Users:
        return Users(tuple(user_ids))

    @staticmethod
    def call(kind: CallKind, ref: str) -> Call:
        return Call(kind, ref)

    @staticmethod
    def parties(consult: Consult, also: Iterable[str] = ()) -> Parties:
        return Parties(consult, frozenset(also))

    @staticmethod
    def socket(sid: str, namespace: str = "/") -> Socket:
        return Socket(sid, namespace)

    @staticmethod
    def board(scope: Scope) -> Board:
        return Board(scope)


@dataclass(frozen=True)
class Event:
    """One server→client event: `name` (`consult:updated` ...), its payload, who receives it, and
    optionally a socket left out (the one whose own request caused it, answered by its ack)."""

    name: str
    payload: Mapping[str, Any]  # a view (`contract.views`) or a dict: sent as JSON
    to: Audience
    skip_sid: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if not EVENT_NAME.match(self.name):
            raise ValueError(f"an event's name is `group:what`, not {self.name!r}")
        if self.skip_sid is not None and isinstance(self.to, Socket):
            raise ValueError("skip_sid leaves a socket out of a room; an event to one socket has none")


async def audience(services: Services, to: Audience) -> list[tuple[str, str]]:
    """The Socket.IO rooms (with their namespace) an audience is, in the order they are sent to."""
    match to:
        case Users(ids):
            return [(keys.user_room(user_id), "/") for user_id in ids]
        case Call():
            return [(to.room, "/")]
        case Parties(consult, also):
            in_call = {peer.user["id"] for peer in await services.rooms.peers(keys.consult_room(consult.id))}
            return [(keys.user_room(user_id), "/") for user_id in involved(consult) | in_call | also]
        case Socket(sid, namespace):
            return [(sid, namespace)]
        case Board(scope):
            return [(board_room(scope), MONITOR)]


async def send(services: Services, events: Iterable[Event]) -> None:
    """Send each event to its audience, in order, from this instance to wherever its sockets are."""
    sio = services.sio
    assert sio is not None, "the Socket.IO server is attached before any event is sent"
    for event in events:
        if isinstance(event.to, Socket):
            sid, namespace = event.to.sid, event.to.namespace
            # A socket on this instance gets it directly (the hot path of a call's signaling):
            # publishing it to Redis would only make every instance read and drop it.
            local = sio.manager.is_connected(sid, namespace)
            await sio.emit(event.name, event.payload, to=sid, namespace=namespace, ignore_queue=local)
            continue
        for room, namespace in await audience(services, event.to):
            await sio.emit(event.name, event.payload, room=room, skip_sid=event.skip_sid, namespace=namespace)


@asynccontextmanager
async def sending(services: Services) -> AsyncIterator[list[Event]]:
    """A list for an action to put its events in, sent in order when the block is left, even by an
    error: what the action did before it failed (a consult accepted, then the next request's offer
    failing) is told as it would have been."""
    events: list[Event] = []
    try:
        yield events
    finally:
        await send(services, events)
