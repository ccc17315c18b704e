"""A hospital may have its consults recorded by themselves (`hospitals.record_consults`, off by default).

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on every database: its default is a literal ("0", false on PostgreSQL and
    # SQLite alike), not an expression, so SQLite's batch mode does not rebuild `hospitals`, which
    # every user row refers to (a rebuild fails their foreign keys on a database holding data).
    op.add_column("hospitals", sa.Column("record_consults", sa.Boolean(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("hospitals") as batch:
        batch.drop_column("record_consults")
