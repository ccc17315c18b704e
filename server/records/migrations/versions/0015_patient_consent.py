"""The patient's consent to a consult: every consent given or withdrawn (append-only, one per
`op_id`), the current one on the consult, and why an emergency went ahead without it.

The patient's identity needs no column: it is part of the consult's `patient` (JSON).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from server.records.models import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.add_column(sa.Column("consent", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("consent_waived_reason", sa.Text(), nullable=True))
    op.create_table(
        "consents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("consult_id", sa.String(64), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("op_id", sa.String(100), nullable=False),
        sa.Column("given_by", sa.String(20), nullable=False),
        sa.Column("relation", sa.String(100), nullable=True),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ux_consent_op", "consents", ["consult_id", "op_id"], unique=True)


def downgrade() -> None:
    op.drop_table("consents")
    with op.batch_alter_table("consults") as batch:
        batch.drop_column("consent_waived_reason")
        batch.drop_column("consent")
