"""The supervisor board: who is available, who waits, which calls run, today's figures.

One function builds the whole board for a scope (the network, or one hospital); `/monitor`
sends it as `monitor:snapshot` and again, whole, as each coalesced `monitor:update`. The
board never carries clinical text: no patient reference, summary or note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from server import presence
from server.consults import VIETNAM, iso
from server.records import Consult, Hospital, SisterLink, User
from server.rooms import Peer
from server.scope import scope_for
from server.services import Services

OPEN = ("queued", "offered", "active")


def _since(at: datetime | None, now: datetime) -> int | None:
    return None if at is None else max(0, int((now - at).total_seconds()))


def _person(user: User | None, hospitals: dict[str, Hospital]) -> dict[str, Any] | None:
    if user is None:
        return None
    hospital = hospitals.get(user.hospital_id)
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "hospital": {"id": user.hospital_id, "name": hospital.name if hospital else ""},
    }


def _hospital(hospital_id: str, hospitals: dict[str, Hospital]) -> dict[str, Any]:
    hospital = hospitals.get(hospital_id)
    return {"id": hospital_id, "name": hospital.name if hospital else "", "level": hospital.level if hospital else ""}


def _participant(peer: Peer) -> dict[str, Any]:
    return {**peer.public(), "reconnecting": peer.dropped_at is not None}


@dataclass(frozen=True)
class Network:
    """Everything any board shows, read once; each scope's board is a view of it."""

    now: datetime
    today: datetime
    hospitals: dict[str, Hospital]
    sisters: dict[str, set[str]]  # hospital id -> its sister hospitals' ids
    specialists: list[User]  # active, by name
    consults: list[Consult]  # open, or created today
    people: dict[str, User]  # requesters and specialists of those consults
    presence: dict[str, dict[str, Any]]
    in_consult: set[str]
    calls: dict[str, tuple[list[Peer], dict[str, dict[str, Any]]]]  # active consult id -> peers, quality
    scopes: set[str | None]  # what the active supervisors oversee


async def load(services: Services) -> Network:
    now = datetime.now(UTC)
    today = datetime.now(VIETNAM).replace(hour=0, minute=0, second=0, microsecond=0)
    async with services.db.session() as session:
        hospitals = {h.id: h for h in (await session.scalars(select(Hospital))).all()}
        sisters: dict[str, set[str]] = {}
        for link in (await session.scalars(select(SisterLink))).all():
            sisters.setdefault(link.upper_id, set()).add(link.lower_id)
            sisters.setdefault(link.lower_id, set()).add(link.upper_id)
        active = (await session.scalars(select(User).where(User.active.is_(True)).order_by(User.name))).all()
        rows = (
            await session.scalars(select(Consult).where(or_(Consult.status.in_(OPEN), Consult.created_at >= today)))
        ).all()
        people_ids = {c.requester_id for c in rows} | {c.specialist_id for c in rows if c.specialist_id}
        people = {u.id: u for u in (await session.scalars(select(User).where(User.id.in_(people_ids)))).all()}
    specialists = [u for u in active if u.role == "specialist"]
    calls = {}
    for c in rows:
        if c.status == "active":
            room = f"consult:{c.id}"
            calls[c.id] = (await services.rooms.peers(room), await services.rooms.quality(room))
    supervisors = (u for u in active if u.role == "supervisor" and u.hospital_id in hospitals)
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
        scopes={None, *(scope_for(u.role, u.hospital_id, hospitals[u.hospital_id].level) for u in supervisors)},
    )


def view(network: Network, scope: str | None) -> dict[str, Any]:
    """`{presence, queue, sessions, stats, server_time}` for the network (`scope=None`) or one hospital."""
    now, hospitals, people = network.now, network.hospitals, network.people
    # A hospital's supervisor sees its own specialists and those of its sister hospitals.
    near = None if scope is None else {scope} | network.sisters.get(scope, set())
    roster = [u for u in network.specialists if near is None or u.hospital_id in near]

    def involves(consult: Consult) -> bool:
        specialist = people.get(consult.specialist_id or "")
        return scope is None or scope in (consult.hospital_id, specialist.hospital_id if specialist else None)

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
        }
        for c in sorted(rows, key=lambda c: c.created_at)
        if c.status in ("queued", "offered")
    ]
    sessions = [
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
        for c in sorted((c for c in rows if c.status == "active"), key=lambda c: c.started_at or now)
    ]
    created_today = [c for c in rows if c.created_at >= network.today]
    return {
        "presence": [
            {
                "user": _person(user, hospitals),
                "specialties": list(user.specialties or []),
                "status": network.presence[user.id]["status"],
                "online": network.presence[user.id]["online"],
                "in_consult": user.id in network.in_consult,
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
                "referrals_avoided": sum(1 for c in created_today if c.outcome == "treated_locally"),
                "waiting": len(queue),
                "active": len(sessions),
            }
        },
        "server_time": now.isoformat(),
    }


async def build(services: Services, scope: str | None) -> dict[str, Any]:
    """One scope's board, read now (a supervisor's snapshot)."""
    return view(await load(services), scope)
