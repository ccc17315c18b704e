"""Records on every database backend under test: migrations, demo data, sister links."""

from __future__ import annotations

from sqlalchemy import func, select

from server import demo, migrate
from server.records import AuditEntry, Database, Hospital, SisterLink, User


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
