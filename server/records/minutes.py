"""The minutes' number and roles: `Số: N/BB-HCTX`, N counted per issuing hospital and year.

N is given at the first generation of a consult's minutes and kept: the next free number of the
requesting hospital's year (in Vietnam), claimed by inserting the consult's row under a unique
(hospital, year, number) index. Two consults numbered at once collide on the index and the loser
takes the next number; two generations of one consult at once collide on its key and both keep
the row that won. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from server.contract.errors import AppError
from server.records.consults import VIETNAM
from server.records.models import Consult, Database, Minutes, utcnow

ATTEMPTS = 20  # numbers tried before giving up: each loss means another consult took that number


async def get(db: Database, consult_id: str) -> Minutes | None:
    async with db.session() as session:
        return await session.get(Minutes, consult_id)


async def ensure(db: Database, consult: Consult) -> Minutes:
    """The consult's minutes row, numbered now if it has none yet."""
    for _ in range(ATTEMPTS):
        if (found := await get(db, consult.id)) is not None:
            return found
        now = utcnow()
        year = now.astimezone(VIETNAM).year
        try:
            async with db.session() as session, session.begin():
                last = await session.scalar(
                    select(func.max(Minutes.number)).where(
                        Minutes.hospital_id == consult.hospital_id, Minutes.year == year
                    )
                )
                row = Minutes(
                    consult_id=consult.id,
                    hospital_id=consult.hospital_id,
                    year=year,
                    number=int(last or 0) + 1,
                    created_at=now,
                )
                session.add(row)
            return row
        except IntegrityError:
            continue  # that number (or this consult's row) was taken meanwhile: look again
    raise AppError("unavailable", "could not number the minutes now; try again")


async def set_roles(db: Database, consult: Consult, chair_id: str | None, secretary_id: str | None) -> Minutes:
    """Names the chair and the secretary (None: back to the default)."""
    row = await ensure(db, consult)
    async with db.session() as session, session.begin():
        await session.execute(
            update(Minutes).where(Minutes.consult_id == consult.id).values(chair_id=chair_id, secretary_id=secretary_id)
        )
    row.chair_id, row.secretary_id = chair_id, secretary_id
    return row
