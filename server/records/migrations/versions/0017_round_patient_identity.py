"""A ward round's listed patient carries the patient's identity and consent, as a consult's patient
does: each consult opened for them in a session starts with both.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("round_patients") as batch:
        batch.add_column(sa.Column("identity", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("consent", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("round_patients") as batch:
        batch.drop_column("consent")
        batch.drop_column("identity")
