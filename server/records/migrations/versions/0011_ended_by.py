"""Who ended (or cancelled) a consult, kept on the consult so every view of it can name them.

Consults closed before are filled in from their timeline's `ended` or `cancelled` line.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.add_column(sa.Column("ended_by_id", sa.String(64), nullable=True))
    bind = op.get_bind()
    events = sa.table(
        "consult_events",
        sa.column("id", sa.Integer),
        sa.column("consult_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("actor_id", sa.String),
    )
    consults = sa.table("consults", sa.column("id", sa.String), sa.column("ended_by_id", sa.String))
    closing = (
        sa.select(events.c.consult_id, events.c.actor_id)
        .where(events.c.kind.in_(("ended", "cancelled")), events.c.actor_id.is_not(None))
        .order_by(events.c.id)
    )
    closers = {consult_id: actor_id for consult_id, actor_id in bind.execute(closing)}
    for consult_id, actor_id in closers.items():
        bind.execute(sa.update(consults).where(consults.c.id == consult_id).values(ended_by_id=actor_id))


def downgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.drop_column("ended_by_id")
