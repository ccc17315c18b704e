"""The supervisor board: who is available, who waits, which calls run, today's figures.

One function builds the whole board for a scope (the network, or one hospital); `/monitor`
sends it as `monitor:snapshot` and again, whole, as each coalesced `monitor:update`. The
board never carries clinical text: no patient reference, summary or note.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from server import presence
from server.consults import VIETNAM, iso
from server.records import Consult, Hospital, SisterLink, User
from server.rooms import Peer
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


async def build(services: Services, scope: str | None) -> dict[str, Any]:
    """`{presence, queue, sessions, stats, server_time}` for the network (`scope=None`) or one hospital."""
    now = datetime.now(UTC)
    today = datetime.now(VIETNAM).replace(hour=0, minute=0, second=0, microsecond=0)
    async with services.db.session() as session:
        hospitals = {h.id: h for h in (await session.scalars(select(Hospital))).all()}
        specialists = select(User).where(User.role == "specialist", User.active.is_(True))
        if scope is not None:
            # A hospital's supervisor sees its own specialists and those of its sister hospitals.
            links = (await session.execute(select(SisterLink))).scalars().all()
            near = {scope} | {
                other
                for link in links
                for one, other in ((link.upper_id, link.lower_id), (link.lower_id, link.upper_id))
                if one == scope
            }
            specialists = specialists.where(User.hospital_id.in_(near))
        roster = (await session.scalars(specialists.order_by(User.name))).all()

        consults = select(Consult).where(or_(Consult.status.in_(OPEN), Consult.created_at >= today))
        rows = (await session.scalars(consults)).all()
        people_ids = {c.requester_id for c in rows} | {c.specialist_id for c in rows if c.specialist_id}
        people = {u.id: u for u in (await session.scalars(select(User).where(User.id.in_(people_ids)))).all()}

    def involves(consult: Consult) -> bool:
        specialist = people.get(consult.specialist_id or "")
        return scope is None or scope in (consult.hospital_id, specialist.hospital_id if specialist else None)

    rows = [c for c in rows if involves(c)]
    live = await presence.many(services.redis, [u.id for u in roster])
    in_consult = await services.live.in_consult()

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
    sessions = []
    for c in sorted((c for c in rows if c.status == "active"), key=lambda c: c.started_at or now):
        room = f"consult:{c.id}"
        peers = await services.rooms.peers(room)
        sessions.append(
            {
                "id": c.id,
                "kind": c.kind,
                "specialty": c.specialty,
                "urgency": c.urgency,
                "hospital": _hospital(c.hospital_id, hospitals),
                "specialist": _person(people.get(c.specialist_id or ""), hospitals),
                "started_at": iso(c.started_at),
                "duration_s": _since(c.started_at, now),
                "participants": [_participant(p) for p in peers],
                "quality": await services.rooms.quality(room),
            }
        )
    created_today = [c for c in rows if c.created_at >= today]
    return {
        "presence": [
            {
                "user": _person(user, hospitals),
                "specialties": list(user.specialties or []),
                "status": live[user.id]["status"],
                "online": live[user.id]["online"],
                "in_consult": user.id in in_consult,
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
