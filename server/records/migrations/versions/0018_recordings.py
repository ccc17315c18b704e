"""Recordings of consults and ward rounds at the server: one row per segment, its file in the
blob store, kept until `retain_until` (and past it under a legal hold).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

from server.records.models import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("consult_id", sa.String(64), sa.ForeignKey("consults.id"), nullable=True),
        sa.Column("round_id", sa.String(64), sa.ForeignKey("rounds.id"), nullable=True),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("started_by", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("path", sa.String(300), nullable=True),
        sa.Column("retain_until", UTCDateTime(), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_recordings_consult_id", "recordings", ["consult_id"])
    op.create_index("ix_recordings_round_id", "recordings", ["round_id"])


def downgrade() -> None:
    op.drop_table("recordings")
