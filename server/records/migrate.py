"""Bring the database schema up to date with the Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from server.records.models import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def _upgrade(connection: Connection, revision: str = "head") -> None:
    if connection.dialect.name == "postgresql":
        # Instances starting together take turns; the lock ends with the transaction.
        connection.execute(text("SELECT pg_advisory_xact_lock(715517)"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(db: Database, revision: str = "head") -> None:
    """Up to `revision`: the latest by default (an earlier one for tests of a migration)."""
    async with db.engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)
