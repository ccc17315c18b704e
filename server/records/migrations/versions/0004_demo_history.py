"""Consults marked as demo history; an index for the statistics' period queries.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("consults", sa.Column("demo", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_consult_created", "consults", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_consult_created", "consults")
    op.drop_column("consults", "demo")
