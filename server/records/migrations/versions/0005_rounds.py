"""Ward rounds: the schedule, its patient list, the sessions held, calendar feeds; round consults.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from server.records.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rounds",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("hospital_id", sa.String(64), sa.ForeignKey("hospitals.id"), nullable=False, index=True),
        sa.Column("ward", sa.String(100), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("duration_min", sa.Integer(), nullable=False),
        sa.Column("recurrence", sa.String(10), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("lead_specialist_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("participant_ids", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "round_patients",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("round_id", sa.String(64), sa.ForeignKey("rounds.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("bed", sa.String(20), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "round_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("round_id", sa.String(64), sa.ForeignKey("rounds.id"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("started_by", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("focus_patient_id", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ux_round_session_day", "round_sessions", ["round_id", "day"], unique=True)
    op.create_table(
        "calendar_feeds",
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    # Plain columns (no foreign key): SQLite cannot add a constrained column without a table copy.
    op.add_column("consults", sa.Column("round_session_id", sa.String(64), nullable=True))
    op.add_column("consults", sa.Column("round_patient_id", sa.String(64), nullable=True))
    op.create_index("ux_consult_round_patient", "consults", ["round_session_id", "round_patient_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_consult_round_patient", "consults")
    op.drop_column("consults", "round_patient_id")
    op.drop_column("consults", "round_session_id")
    op.drop_table("calendar_feeds")
    op.drop_index("ux_round_session_day", "round_sessions")
    op.drop_table("round_sessions")
    op.drop_table("round_patients")
    op.drop_table("rounds")
