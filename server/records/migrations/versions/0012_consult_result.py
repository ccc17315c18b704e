"""What became of the patient after a consult, reported back by the requesting side (`consult:result`).

The latest report is kept on the consult, so every view of it shows it; each report (a later one
replaces an earlier one) is also a `result` line of the consult's timeline.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from server.records.models import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.add_column(sa.Column("result", sa.String(20), nullable=True))
        batch.add_column(sa.Column("result_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("result_by_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("result_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.drop_column("result_at")
        batch.drop_column("result_by_id")
        batch.drop_column("result_note")
        batch.drop_column("result")
