"""Digital signatures on the minutes: users' signing certificates (sealed at rest), the versions
of a consult's minutes frozen at their first signature, each signature given, and the mark of a
note written after the minutes were locked (an addendum).

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

from server.records.models import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.add_column(sa.Column("addendum", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "signing_certificates",
        sa.Column("user_id", sa.String(64), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("not_after", UTCDateTime(), nullable=False),
        sa.Column("uploaded_by", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("wrong_pins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "minutes_versions",
        sa.Column("consult_id", sa.String(64), sa.ForeignKey("consults.id"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("notes_upto", sa.Integer(), nullable=False),
        sa.Column("chain_seq", sa.Integer(), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("base_sha256", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "minutes_signatures",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("consult_id", sa.String(64), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("signer_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("base_sha256", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_index("ux_minutes_signer", "minutes_signatures", ["consult_id", "version", "signer_id"], unique=True)


def downgrade() -> None:
    op.drop_table("minutes_signatures")
    op.drop_table("minutes_versions")
    op.drop_table("signing_certificates")
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("addendum")
