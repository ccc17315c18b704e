"""Consults and their timeline.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from server.records.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consults",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("op_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("specialty", sa.String(50), nullable=False),
        sa.Column("urgency", sa.String(20), nullable=False),
        sa.Column("patient", sa.JSON(), nullable=False),
        sa.Column("requester_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("hospital_id", sa.String(64), sa.ForeignKey("hospitals.id"), nullable=False),
        sa.Column("named_specialist_id", sa.String(64), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("named_answer", sa.String(20), nullable=True),
        sa.Column("specialist_id", sa.String(64), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(30), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ux_consult_op", "consults", ["requester_id", "op_id"], unique=True)
    op.create_index("ix_consult_status", "consults", ["status"])
    op.create_index("ix_consult_specialist", "consults", ["specialist_id"])
    op.create_table(
        "consult_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("consult_id", sa.String(64), sa.ForeignKey("consults.id"), nullable=False, index=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consult_events")
    op.drop_table("consults")
