"""The minutes of a consult: their number per issuing hospital and year, and their chair and secretary.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "minutes",
        sa.Column("consult_id", sa.String(64), sa.ForeignKey("consults.id"), primary_key=True),
        sa.Column("hospital_id", sa.String(64), sa.ForeignKey("hospitals.id"), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("chair_id", sa.String(64), nullable=True),
        sa.Column("secretary_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_minutes_number", "minutes", ["hospital_id", "year", "number"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_minutes_number", table_name="minutes")
    op.drop_table("minutes")
