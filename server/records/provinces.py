"""The hospitals a scope covers, read from the database: every hospital's province, and the names
people read. The rules themselves (who oversees what) are pure, in `server/policy/scope.py`; this
module only feeds them the provinces as they are now, so that an admin moving a hospital to
another province changes what its Department of Health sees at the next read."""

from __future__ import annotations

from sqlalchemy import select

from server.policy.scope import InView, Scope, hospital_scope
from server.records.models import Database, Hospital
from server.records.users import Account


async def provinces(db: Database) -> dict[str, str | None]:
    """Every hospital's province code (None when unset), by hospital id."""
    async with db.session() as session:
        return {h: p for h, p in (await session.execute(select(Hospital.id, Hospital.province))).all()}


async def resolve(db: Database, scope: Scope) -> InView:
    """The hospitals in view for `scope`, read now (only a province needs the database)."""
    return scope.hospitals(await provinces(db) if scope.needs_provinces else {})


async def in_view(db: Database, account: Account) -> InView:
    """The hospitals `account` oversees, read now."""
    return await resolve(db, hospital_scope(account))


async def describe(db: Database, scope: Scope) -> dict[str, str | None] | None:
    """`{kind, id, name}` for people (the statistics and the monthly report); None for the network."""
    if scope.kind == "network":
        return None
    if scope.kind == "nothing":
        return {"kind": "nothing", "id": None, "name": "—"}
    async with db.session() as session:
        if scope.kind == "hospital":
            hospital = await session.get(Hospital, scope.code)
            return {"kind": "hospital", "id": scope.code, "name": hospital.name if hospital else scope.code}
        names = (await session.scalars(select(Hospital.province_name).where(Hospital.province == scope.code))).all()
    return {"kind": "province", "id": scope.code, "name": next((n for n in names if n), scope.code)}
