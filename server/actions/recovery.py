"""Recovery: live state rebuilt after Redis lost it; the sockets of a crashed instance cleaned up.

Redis holds only what can be rebuilt (presence, offers, the queue, calls); the database is the
record. Every instance runs a watch (`signaling/server.py`: `live_epoch`, `follow_epoch` and
`reap_lapsed` every second, each given a list for the events it causes, which goes to the outbox),
which handles two faults:

- **Redis came back empty** (restarted, failed over, flushed). The key `live:epoch` is written
  once the live state is complete; when it is missing, one instance (holding `live:rebuilding`)
  rebuilds from the database what the database knows (`rebuild`) and writes a new epoch. Every
  instance that sees the epoch change closes its own sockets' connections: the clients reconnect
  by themselves, as after a network drop, and rebuild presence and their calls (a fresh
  `session:state`, then `consult:join` again). Each step is idempotent, so two instances doing
  it, or one dying half-way and another starting over, is harmless.
- **An instance died** (kill -9, a lost host). Its sockets' heartbeats lapse after
  `PRESENCE_TTL_S`; the first instance to see one (`presence.lapsed`) marks that socket's call
  peers as reconnecting, as if the socket had dropped, and moves on the specialist's offers if
  they have no other device online.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from server.actions import dispatch
from server.live import keys, presence
from server.outbox import Call, Event
from server.records import consults
from server.records.models import Consult, ConsultEvent
from server.runtime.services import Services

log = logging.getLogger("telerounds.recovery")

REBUILD_LEASE_MS = 30_000  # should the rebuilding instance die, another starts over after this


@dataclass
class Seen:
    """The live-state epoch this instance's sockets were connected under."""

    epoch: str | None = None


async def live_epoch(services: Services, out: list[Event]) -> str | None:
    """The live state's epoch, rebuilt first if Redis lost it (None: another instance is at it);
    the rebuild's events are to be sent before `follow_epoch` closes any connection."""
    epoch = await services.redis.get(keys.LIVE_EPOCH)
    if epoch is not None:
        return str(epoch)
    return await rebuild_once(services, out)


async def follow_epoch(services: Services, seen: Seen, epoch: str) -> None:
    """A new epoch: Redis lost the live state, so this instance's sockets reconnect and rebuild theirs."""
    if seen.epoch is not None and epoch != seen.epoch:
        log.warning("Redis lost the live state; it was rebuilt; closing this instance's connections")
        await drop_local_connections(services)
    seen.epoch = epoch


async def rebuild_once(services: Services, out: list[Event]) -> str | None:
    """Rebuild the live state unless another instance is at it; the new epoch, or None."""
    token = secrets.token_hex(8)
    if not await services.redis.set(keys.LIVE_REBUILDING, token, nx=True, px=REBUILD_LEASE_MS):
        return None
    try:
        counts = await rebuild(services, out)
        await services.redis.set(keys.LIVE_EPOCH, token)
        log.info("live state rebuilt from the database: %s", counts)
        return token
    finally:
        # Not atomic: at worst another instance rebuilds once more, which changes nothing.
        if await services.redis.get(keys.LIVE_REBUILDING) == token:
            await services.redis.delete(keys.LIVE_REBUILDING)


async def rebuild(services: Services, out: list[Event]) -> dict[str, int]:
    """Put back into Redis what the database knows about open consults.

    Active consults: their specialist is in a consult (and busy), their invitations stand (those
    not withdrawn since).
    Offered consults: the offer is gone, so they go back to the queue (a `requeued` line in the
    timeline; a compare-and-set, so once). Queued ones, those included: dispatched again, so
    they wait in their queue or are offered to whoever is free.
    """
    async with services.db.session() as session:
        found = await session.scalars(
            select(Consult)
            .where(Consult.status.in_(consults.OPEN_STATUSES), Consult.kind == "consult")
            .order_by(Consult.created_at)
        )
        open_consults = list(found.all())
        ids = [c.id for c in open_consults]
        events: list[Any] = []
        if ids:
            rows = await session.execute(
                select(ConsultEvent.consult_id, ConsultEvent.kind, ConsultEvent.actor_id, ConsultEvent.detail)
                .where(ConsultEvent.consult_id.in_(ids), ConsultEvent.kind.in_(("declined", "invited", "uninvited")))
                .order_by(ConsultEvent.id)
            )
            events = list(rows.all())
    standing: dict[tuple[str, str], bool] = {}  # (consult, user) → invited, as the latest line says
    for consult_id, kind, actor_id, detail in events:
        if kind == "declined" and actor_id:
            await services.live.add_declined(consult_id, actor_id)
        elif kind in ("invited", "uninvited") and isinstance(detail, dict) and detail.get("user_id"):
            standing[(consult_id, str(detail["user_id"]))] = kind == "invited"
    for (consult_id, user_id), invited in standing.items():
        if invited:
            await services.rooms.invite(keys.consult_room(consult_id), user_id)
    counts = {"active": 0, "requeued": 0, "dispatched": 0}
    for consult in open_consults:
        if consult.status == "active":
            counts["active"] += 1
            if consult.specialist_id:
                await services.live.set_in_consult(consult.specialist_id, True)
                await presence.set_status(services.redis, consult.specialist_id, "busy", chosen=False)
            continue
        current: Consult | None = consult
        if consult.status == "offered":
            current = await consults.transition(
                services.db, consult, "requeued", None, {"reason": "live state lost"}, status="queued"
            )
            if current is None:
                continue  # changed meanwhile (accepted, cancelled, or requeued by another instance)
            counts["requeued"] += 1
        if current is not None and current.status == "queued":
            counts["dispatched"] += 1
            await dispatch.dispatch(services, out, current)
    return counts


async def drop_local_connections(services: Services) -> None:
    """Close every connection this instance holds, as a network drop would: clients reconnect."""
    sio = services.sio
    if sio is None:
        return
    for socket in list(sio.eio.sockets.values()):
        # Closing runs the disconnect handlers here without telling the client (a Socket.IO
        # disconnect would stop it from reconnecting); waking the writer ends the transport.
        await socket.close(wait=False, abort=True)
        await socket.queue.put(None)


async def reap_lapsed(services: Services, out: list[Event]) -> None:
    """Sockets of a dead instance: their call peers reconnecting, their offers moving on."""
    for user_id, sid in await presence.lapsed(services.redis):
        for room, peer in await services.rooms.drop_sid(sid, services.settings.reconnect_grace_s):
            call = Call.of(room)
            name = call.pick("consult:peer-reconnecting", "round:peer-reconnecting")
            payload = {**call.ref_field(), "peer_id": peer.peer_id, "user": peer.user}
            out.append(Event(name, payload, call))
        services.board_changed()
        if not await presence.online(services.redis, user_id):
            await dispatch.specialist_offline(services, user_id)
