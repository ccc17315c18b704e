"""Notes (append-only, seq per consult) and attachments.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from server.records.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("consults", sa.Column("note_seq", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "notes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("consult_id", sa.String(64), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("op_id", sa.String(100), nullable=False),
        sa.Column("section", sa.String(30), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("amends", sa.String(64), nullable=True),
    )
    op.create_index("ux_note_seq", "notes", ["consult_id", "seq"], unique=True)
    op.create_index("ux_note_op", "notes", ["consult_id", "op_id"], unique=True)
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("consult_id", sa.String(64), sa.ForeignKey("consults.id"), nullable=False, index=True),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(50), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploader_id", sa.String(64), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("attachments")
    op.drop_table("notes")
    op.drop_column("consults", "note_seq")
