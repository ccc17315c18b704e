"""Caps on records: a consult's note text in bytes (`consults.note_bytes`, kept with `note_seq`),
and whether a round's lead specialist accepted it (`rounds.lead_status`).

Rounds already scheduled keep their lead as accepted; the bytes of notes already written are
counted once here.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.add_column(sa.Column("note_bytes", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("lead_status", sa.String(10), nullable=False, server_default="accepted"))
    # UTF-8 bytes, counted in Python: SQL's length() counts characters on SQLite.
    bind = op.get_bind()
    notes = sa.table("notes", sa.column("consult_id", sa.String), sa.column("text", sa.Text))
    consults = sa.table("consults", sa.column("id", sa.String), sa.column("note_bytes", sa.Integer))
    totals: dict[str, int] = {}
    for consult_id, text in bind.execute(sa.select(notes.c.consult_id, notes.c.text)):
        totals[consult_id] = totals.get(consult_id, 0) + len(text.encode())
    for consult_id, total in totals.items():
        bind.execute(sa.update(consults).where(consults.c.id == consult_id).values(note_bytes=total))


def downgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("lead_status")
    with op.batch_alter_table("consults") as batch:
        batch.drop_column("note_bytes")
