"""The audit log: who did or read what, when, from where. Never the clinical text itself."""

from __future__ import annotations

from server.records import AuditEntry, Database


def entry(
    actor_id: str | None,
    action: str,
    target_type: str,
    target_id: str,
    address: str = "",
    detail: str = "",
) -> AuditEntry:
    """An entry to add in the session that makes the change it records, so both stand or fall together."""
    return AuditEntry(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        address=address[:100],
        detail=detail[:500],
    )


async def record(
    db: Database,
    actor_id: str | None,
    action: str,
    target_type: str,
    target_id: str,
    address: str = "",
    detail: str = "",
) -> None:
    async with db.session() as session, session.begin():
        session.add(entry(actor_id, action, target_type, target_id, address, detail))
