"""Records on every database backend under test: migrations, demo data, sister links."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.records import migrate
from server.records.models import SQLITE_POOL_SIZE, AuditEntry, Database, Hospital, SisterLink, User
from server.runtime import demo


async def test_migrated_database_holds_the_demo_network(any_database_url: str) -> None:
    db = Database(any_database_url)
    try:
        async with db.session() as session:
            hospitals = {h.id: h for h in (await session.scalars(select(Hospital))).all()}
            links = {(link.upper_id, link.lower_id) for link in (await session.scalars(select(SisterLink))).all()}
            users = {u.username: u for u in (await session.scalars(select(User))).all()}
        assert hospitals["xanhpon"].level == "city"
        assert hospitals["bavi-dgh"].level == "district"
        assert ("xanhpon", "bavi-dgh") in links
        assert users["xanhpon.surgeon"].specialties == ["surgery"]
        assert users["bavi.clinician"].password_hash.startswith("$argon2")
        assert all(u.active for u in users.values())
    finally:
        await db.close()


async def test_migrating_and_seeding_again_changes_nothing(any_database_url: str) -> None:
    db = Database(any_database_url)
    try:
        await migrate.upgrade(db)
        await demo.seed(db, "demo")
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(User)) == len(demo.USERS)
    finally:
        await db.close()


async def test_audit_entries_keep_timezone_aware_times(any_database_url: str) -> None:
    db = Database(any_database_url)
    try:
        async with db.session() as session, session.begin():
            session.add(AuditEntry(actor_id="u1", action="consult.read", target_type="consult", target_id="c1"))
        async with db.session() as session:
            entry = (await session.scalars(select(AuditEntry))).one()
        assert entry.at.tzinfo is not None
    finally:
        await db.close()


async def test_sessions_beyond_the_sqlite_pool_wait_for_a_connection_instead_of_failing(database_url: str) -> None:
    db = Database(database_url)
    try:
        held: list[AsyncSession] = []
        for _ in range(SQLITE_POOL_SIZE):  # every pooled connection in use
            session = db.session()
            await session.execute(select(1))
            held.append(session)

        async def one_more() -> int:
            async with db.session() as session:
                return int(await session.scalar(select(func.count()).select_from(User)) or 0)

        waiting = asyncio.create_task(one_more())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # no sixth connection is opened
        await held.pop().close()
        assert await asyncio.wait_for(waiting, 5) > 0
        for session in held:
            await session.close()
    finally:
        await db.close()
