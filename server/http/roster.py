"""`GET /api/roster`: the specialists who can be asked, with live presence, and `GET /api/specialties`."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from server.contract.errors import AppError
from server.contract.views import hospital_ref, roster_entry
from server.http.common import require_account, services_of
from server.live import presence
from server.policy import matching
from server.records.models import Hospital, User

routes = web.RouteTableDef()


@routes.get("/api/roster")
async def roster(request: web.Request) -> web.Response:
    await require_account(request)
    services = services_of(request)
    specialty = request.query.get("specialty")
    if specialty is not None and specialty not in matching.SPECIALTIES:
        raise AppError("invalid", f"unknown specialty; one of {', '.join(matching.SPECIALTIES)}")
    async with services.db.session() as session:
        rows = (
            await session.execute(
                select(User, Hospital)
                .join(Hospital, User.hospital_id == Hospital.id)
                .where(User.role == "specialist", User.active.is_(True))
                .order_by(Hospital.name, User.name)
            )
        ).all()
    people = [(u, h) for u, h in rows if specialty is None or specialty in (u.specialties or [])]
    live = await presence.many(services.redis, [u.id for u, _ in people])
    in_consult = await services.live.in_consult()
    return web.json_response(
        {
            "specialists": [
                roster_entry(
                    u.id,
                    u.name,
                    hospital_ref(h.id, h.name, h.level),
                    list(u.specialties or []),
                    {**live[u.id], "in_consult": u.id in in_consult},
                )
                for u, h in people
            ]
        }
    )


@routes.get("/api/specialties")
async def specialties(request: web.Request) -> web.Response:
    return web.json_response({"specialties": [{"code": c, "name": n} for c, n in matching.SPECIALTIES.items()]})
