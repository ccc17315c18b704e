"""The tamper-evident audit chain (server/records/chain.py): `seq`, `prev_hash` and `hash` on
every audit entry, and the chain's head.

The audit entries already kept are chained in the order they were written (time, then id). The
notes and consult outcomes already kept get the chained entry they would have had (`note.add`,
`note.amend`, `consult.end`, at the time they were written), so the chain vouches for them too.

Revision ID: 0014
Revises: 0013
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from server.records import chain
from server.records.models import UTCDateTime, new_id, utcnow

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.Integer, nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    bind = op.get_bind()
    audit = sa.table(
        "audit_log",
        sa.column("id", sa.String),
        sa.column("at", UTCDateTime()),
        sa.column("actor_id", sa.String),
        sa.column("action", sa.String),
        sa.column("target_type", sa.String),
        sa.column("target_id", sa.String),
        sa.column("address", sa.String),
        sa.column("detail", sa.Text),
        sa.column("seq", sa.Integer),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    notes = sa.table(
        "notes",
        *(
            sa.column(name, sa.String)
            for name in ("id", "consult_id", "op_id", "section", "text", "author_id", "amends")
        ),
        sa.column("seq", sa.Integer),
        sa.column("created_at", UTCDateTime()),
    )
    consults = sa.table(
        "consults",
        *(sa.column(name, sa.String) for name in ("id", "outcome", "summary", "ended_by_id")),
        sa.column("ended_at", UTCDateTime()),
        sa.column("demo", sa.Boolean),
    )
    kept = [dict(row._mapping) for row in bind.execute(sa.select(audit).order_by(audit.c.at, audit.c.id))]
    added: list[dict[str, Any]] = []
    for note in bind.execute(sa.select(notes)):
        content = chain.note_content(note)
        added.append(_entry(note.created_at, note.author_id, chain.note_action(note), "note", note.id, content))
    ended = sa.select(consults).where(consults.c.outcome.is_not(None), consults.c.demo.is_(False))
    for consult in bind.execute(ended):
        content = chain.outcome_content(consult)
        added.append(_entry(consult.ended_at, consult.ended_by_id, "consult.end", "consult", consult.id, content))
    every = sorted(kept + added, key=lambda entry: (entry["at"], entry["id"]))
    prev = chain.GENESIS
    for seq, entry in enumerate(every, start=1):
        entry["seq"] = seq
        entry["prev_hash"] = prev
        entry["hash"] = prev = chain.entry_hash(prev, _Fields(entry))
    kept_ids = {entry["id"] for entry in kept}
    if kept:
        by_id: sa.BindParameter[str] = sa.bindparam("entry_id")
        bind.execute(
            sa.update(audit)
            .where(audit.c.id == by_id)
            .values(seq=sa.bindparam("seq"), prev_hash=sa.bindparam("prev_hash"), hash=sa.bindparam("hash")),
            [
                {"entry_id": e["id"], "seq": e["seq"], "prev_hash": e["prev_hash"], "hash": e["hash"]}
                for e in every
                if e["id"] in kept_ids
            ],
        )
    if added:
        bind.execute(sa.insert(audit), [e for e in every if e["id"] not in kept_ids])
    bind.execute(sa.insert(head).values(id=chain.HEAD_ID, seq=len(every), hash=prev))
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("seq", existing_type=sa.Integer, nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
        batch.create_index("ux_audit_seq", ["seq"], unique=True)


class _Fields:
    def __init__(self, entry: dict[str, Any]) -> None:
        self.__dict__.update(entry)


def _entry(
    at: Any, actor_id: Any, action: str, target_type: str, target_id: str, content: dict[str, object]
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "at": at or utcnow(),
        "actor_id": actor_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "address": "",
        "detail": chain.DIGEST + chain.content_hash(content),
    }


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ux_audit_seq")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
    op.drop_table("audit_chain_head")
