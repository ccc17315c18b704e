"""The supervisor board: who is available, who waits, which calls run, today's figures.

One function builds the whole board for a scope (server/policy/scope.py: the network, the hospitals
of one province, one hospital, or nothing); `/monitor`
sends it as `monitor:snapshot` and again, whole, as each coalesced `monitor:update`. The
board never carries clinical text: no patient reference, summary or note.

A ward round in progress is one session (its one call, `round:<id>`), with the number of its
patients and how many have a decision; its patients' consults are not sessions of their own.

Who watches which board is kept in Redis (`monitor:watchers`, a sorted set of
`<scope key>|<socket id>` scored by when the watcher lapses, as presence does), so that an
instance reads the network only when some supervisor, on any instance, has a board open.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import or_, select

from server.contract.views import BoardPerson, HospitalRef, board_person, hospital_name, hospital_ref, iso
from server.live import keys, presence
from server.live.rooms import Peer
from server.policy import lifecycle
from server.policy.scope import Scope, sees
from server.records.consults import VIETNAM
from server.records.models import Consult, Hospital, Round, RoundSession, SisterLink, User
from server.runtime.services import Services

OPEN = lifecycle.OPEN_STATUSES


def _since(at: datetime | None, now: datetime) -> int | None:
    return None if at is None else max(0, int((now - at).total_seconds()))


def _person(user: User | None, hospitals: dict[str, Hospital]) -> BoardPerson | None:
    if user is None:
        return None
    hospital = hospitals.get(user.hospital_id)
    where = hospital_name(user.hospital_id, hospital.name if hospital else "")
    return board_person(user.id, user.name, user.role, where)


def _hospital(hospital_id: str, hospitals: dict[str, Hospital]) -> HospitalRef:
    hospital = hospitals.get(hospital_id)
    return hospital_ref(hospital_id, hospital.name if hospital else "", hospital.level if hospital else "")


def _participant(peer: Peer) -> dict[str, Any]:
    return {**peer.public(), "reconnecting": peer.dropped_at is not None}


Call = tuple[list[Peer], dict[str, dict[str, Any]]]  # a call's peers and their latest quality


@dataclass(frozen=True)
class RoundLive:
    """A ward round session in progress: its round, its call, its patients' consults."""

    round: Round
    session: RoundSession
    call: Call
    patients: int  # on the list in this session (given a consult, not taken off)
    decided: int  # of those, with a decision


@dataclass(frozen=True)
class Network:
    """Everything any board shows, read once; each scope's board is a view of it."""

    now: datetime
    today: datetime
    hospitals: dict[str, Hospital]
    sisters: dict[str, set[str]]  # hospital id -> its sister hospitals' ids
    specialists: list[User]  # active, by name
    consults: list[Consult]  # open, or created today
    people: dict[str, User]  # requesters and specialists of those consults, leads of the rounds
    presence: dict[str, dict[str, Any]]
    in_consult: set[str]
    calls: dict[str, Call]  # active consult id -> its call (not round patients': their call is the round's)
    rounds: list[RoundLive]  # sessions in progress, oldest first
    wait_alert_s: float = 600.0  # a request waiting longer is flagged `overdue` (WAIT_ALERT_S)
    in_round: frozenset[str] = frozenset()  # specialists set busy for a ward round's call


async def _call(services: Services, room: str) -> Call:
    return await services.rooms.peers(room), await services.rooms.quality(room)


async def load(services: Services) -> Network:
    now = datetime.now(UTC)
    today = datetime.now(VIETNAM).replace(hour=0, minute=0, second=0, microsecond=0)
    async with services.db.session() as session:
        hospitals = {h.id: h for h in (await session.scalars(select(Hospital))).all()}
        sisters: dict[str, set[str]] = {}
        for link in (await session.scalars(select(SisterLink))).all():
            sisters.setdefault(link.upper_id, set()).add(link.lower_id)
            sisters.setdefault(link.lower_id, set()).add(link.upper_id)
        specialists = list(
            (
                await session.scalars(
                    select(User).where(User.active.is_(True), User.role == "specialist").order_by(User.name)
                )
            ).all()
        )
        rows = (
            await session.scalars(select(Consult).where(or_(Consult.status.in_(OPEN), Consult.created_at >= today)))
        ).all()
        held = (
            await session.execute(
                select(RoundSession, Round)
                .join(Round, Round.id == RoundSession.round_id)
                .where(RoundSession.status == "active")
                .order_by(RoundSession.started_at)
            )
        ).all()
        held_ids = [s.id for s, _ in held]
        statuses = (
            await session.execute(
                select(Consult.round_session_id, Consult.status).where(Consult.round_session_id.in_(held_ids))
            )
        ).all()
        people_ids = {c.requester_id for c in rows} | {c.specialist_id for c in rows if c.specialist_id}
        people_ids |= {r.lead_specialist_id for _, r in held}
        people = {u.id: u for u in (await session.scalars(select(User).where(User.id.in_(people_ids)))).all()}
    calls = {}
    for c in rows:
        if c.status == "active" and c.kind != "round":
            calls[c.id] = await _call(services, keys.consult_room(c.id))
    live = []
    for held_session, item in held:
        # A patient taken off the list mid-session has their consult cancelled: not counted.
        counted = [status for session_id, status in statuses if session_id == held_session.id and status != "cancelled"]
        call = await _call(services, keys.round_room(item.id))
        live.append(RoundLive(item, held_session, call, len(counted), counted.count("ended")))
    return Network(
        now=now,
        today=today,
        hospitals=hospitals,
        sisters=sisters,
        specialists=specialists,
        consults=list(rows),
        people=people,
        presence=await presence.many(services.redis, [u.id for u in specialists]),
        in_consult=await services.live.in_consult(),
        calls=calls,
        rounds=live,
        wait_alert_s=services.settings.wait_alert_s,
        in_round=frozenset(await services.live.in_round()),
    )


# Who watches.


def _watcher(scope: Scope, sid: str) -> str:
    return f"{scope.key}|{sid}"


async def watch(redis: aioredis.Redis, scope: Scope, sid: str, ttl_s: float) -> None:
    await redis.zadd(keys.MONITOR_WATCHERS, {_watcher(scope, sid): time.time() + ttl_s})


async def unwatch(redis: aioredis.Redis, scope: Scope, sid: str) -> None:
    await redis.zrem(keys.MONITOR_WATCHERS, _watcher(scope, sid))


async def keep_watching(redis: aioredis.Redis, watchers: dict[str, Scope], ttl_s: float) -> None:
    """Push forward the lapse time of this instance's watchers (socket id -> scope); a crashed
    instance's lapse."""
    expires = time.time() + ttl_s
    async with redis.pipeline(transaction=False) as pipe:
        if watchers:
            pipe.zadd(keys.MONITOR_WATCHERS, {_watcher(scope, sid): expires for sid, scope in watchers.items()})
        pipe.zremrangebyscore(keys.MONITOR_WATCHERS, "-inf", time.time())
        await pipe.execute()


async def watched(redis: aioredis.Redis) -> set[Scope]:
    """The scopes with a board open anywhere."""
    members = await redis.zrangebyscore(keys.MONITOR_WATCHERS, time.time(), "+inf")
    return {Scope.from_key(str(m).rpartition("|")[0]) for m in members}


def view(network: Network, scope: Scope) -> dict[str, Any]:
    """`{presence, queue, sessions, stats, server_time}` of what `scope` oversees: the consults
    and rounds that involve a hospital in view (server/policy/scope.py), and the specialists of those
    hospitals (of a hospital's sister hospitals too, for a hospital's supervisor)."""
    now, hospitals, people = network.now, network.hospitals, network.people
    in_view = scope.hospitals({h.id: h.province for h in hospitals.values()})
    near = in_view
    if scope.kind == "hospital":
        near = frozenset({scope.code} | network.sisters.get(scope.code, set()))
    roster = [u for u in network.specialists if near is None or u.hospital_id in near]

    def involves(consult: Consult) -> bool:
        specialist = people.get(consult.specialist_id or "")
        return sees(in_view, consult.hospital_id, specialist.hospital_id if specialist else None)

    def oversees(live: RoundLive) -> bool:
        lead = people.get(live.round.lead_specialist_id)
        return sees(in_view, live.round.hospital_id, lead.hospital_id if lead else None)

    rows = [c for c in network.consults if involves(c)]
    queue = [
        {
            "id": c.id,
            "specialty": c.specialty,
            "urgency": c.urgency,
            "status": c.status,
            "hospital": _hospital(c.hospital_id, hospitals),
            "requested_at": iso(c.created_at),
            "waiting_s": _since(c.created_at, now),
            "overdue": (now - c.created_at).total_seconds() > network.wait_alert_s,
        }
        for c in sorted(rows, key=lambda c: c.created_at)
        if c.status in ("queued", "offered")
    ]
    sessions: list[dict[str, Any]] = [
        {
            "id": c.id,
            "kind": c.kind,
            "specialty": c.specialty,
            "urgency": c.urgency,
            "hospital": _hospital(c.hospital_id, hospitals),
            "specialist": _person(people.get(c.specialist_id or ""), hospitals),
            "started_at": iso(c.started_at),
            "duration_s": _since(c.started_at, now),
            "participants": [_participant(p) for p in network.calls.get(c.id, ([], {}))[0]],
            "quality": network.calls.get(c.id, ([], {}))[1],
        }
        for c in rows
        if c.status == "active" and c.kind != "round"
    ]
    sessions += [_round_session(live, hospitals, people, now) for live in network.rounds if oversees(live)]
    sessions.sort(key=lambda s: str(s["started_at"] or ""))
    # Round patients are reviewed on a schedule, not requested: not counted as consult requests.
    created_today = [c for c in rows if c.created_at >= network.today and c.kind != "round"]
    decided_today = [c for c in rows if c.created_at >= network.today and c.outcome == "treated_locally"]
    return {
        "presence": [
            {
                "user": _person(user, hospitals),
                "specialties": list(user.specialties or []),
                "status": network.presence[user.id]["status"],
                "online": network.presence[user.id]["online"],
                "in_consult": user.id in network.in_consult,
                "in_round": user.id in network.in_round,
            }
            for user in roster
        ],
        "queue": queue,
        "sessions": sessions,
        "stats": {
            "today": {
                "requests": len(created_today),
                "accepted": sum(1 for c in created_today if c.started_at is not None),
                "ended": sum(1 for c in created_today if c.status == "ended"),
                "referrals_avoided": len(decided_today),  # round patients' decisions too, as in /api/stats
                "waiting": len(queue),
                "active": len(sessions),
            }
        },
        "server_time": now.isoformat(),
    }


def _round_session(
    live: RoundLive, hospitals: dict[str, Hospital], people: dict[str, User], now: datetime
) -> dict[str, Any]:
    """A ward round in progress as one session: its round (title, ward, patients, decided), no patient data."""
    item, peers, quality = live.round, *live.call
    return {
        "id": live.session.id,
        "kind": "round",
        "specialty": None,
        "urgency": None,
        "hospital": _hospital(item.hospital_id, hospitals),
        "specialist": _person(people.get(item.lead_specialist_id), hospitals),
        "started_at": iso(live.session.started_at),
        "duration_s": _since(live.session.started_at, now),
        "participants": [_participant(p) for p in peers],
        "quality": quality,
        "round": {
            "id": item.id,
            "title": item.title,
            "ward": item.ward,
            "patients": live.patients,
            "decided": live.decided,
        },
    }


async def build(services: Services, scope: Scope) -> dict[str, Any]:
    """One scope's board, read now (a supervisor's snapshot)."""
    return view(await load(services), scope)
