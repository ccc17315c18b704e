"""Revoked tokens: signing out ends that one token at once, on every instance.

Revision ID: 0010
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from server.records.models import UTCDateTime

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("revoked_tokens")
