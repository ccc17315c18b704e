"""Alembic environment: runs on the connection that `server.records.migrate.upgrade` hands in."""

from alembic import context

from server.records.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
