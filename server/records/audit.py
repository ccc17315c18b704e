"""The audit log: who did or read what, when, from where. Never the clinical text itself."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, or_

from server.records.models import AuditEntry, Database

# Reads that show many consults at once: one entry each, with target type `LISTING` and the
# ids of what was shown in its detail (`ids=a,b,c`), so the viewer finds them by consult too.
LISTING = "consult_list"


# Every action the service records: what the audit viewer filters by (`action=`).
ACTIONS: tuple[str, ...] = (
    "admin.hospital.create",
    "admin.hospital.update",
    "admin.link.create",
    "admin.link.delete",
    "admin.user.activate",
    "admin.user.certificate",
    "admin.user.create",
    "admin.user.deactivate",
    "admin.user.password",
    "admin.user.update",
    "attachment.add",
    "attachment.read",
    "auth.logout",
    "calendar.key",
    "calendar.revoke",
    "consent.record",
    "consult.consent",
    "consult.end",
    "consult.fhir",
    "consult.minutes",
    "consult.minutes_pdf",
    "consult.read",
    "consult.result",
    "consults.list",
    "minutes.roles",
    "minutes.sign",
    "minutes.sign_refused",
    "minutes.signatures",
    "note.add",
    "note.amend",
    "notes.list",
    "recording.delete",
    "recording.fail",
    "recording.play",
    "recording.start",
    "recording.stop",
    "round.cancel",
    "round.create",
    "round.lead",
    "round.patients",
    "round.read",
    "round.update",
    "rounds.list",
    "session.state",
    "stats.read",
    "stats.report",
)


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


def listing_detail(consult_ids: Iterable[str], detail: str = "") -> str:
    """`<detail> ids=a,b,c`. The ids are never cut to the usual detail length: they are the
    service's own (32 hex characters) and a list is bounded (500 consults), so it stays small."""
    ids = ",".join(dict.fromkeys(consult_ids))
    return " ".join(part for part in (detail[:200], f"ids={ids}") if part)


def listed(consult_id: str) -> ColumnElement[bool]:
    """Audit entries of lists that showed this consult: its id is one whole item of `ids=`."""
    detail = AuditEntry.detail
    return and_(
        AuditEntry.target_type == LISTING,
        or_(
            detail.contains(f"ids={consult_id},", autoescape=True),
            detail.contains(f",{consult_id},", autoescape=True),
            detail.endswith(f"ids={consult_id}", autoescape=True),
            detail.endswith(f",{consult_id}", autoescape=True),
        ),
    )


async def record_listing(
    db: Database,
    actor_id: str,
    action: str,
    consult_ids: Iterable[str],
    address: str = "",
    detail: str = "",
) -> None:
    """A read that showed a list of consults: which ones, by id; never what they say."""
    async with db.session() as session, session.begin():
        session.add(
            AuditEntry(
                actor_id=actor_id,
                action=action,
                target_type=LISTING,
                target_id="",
                address=address[:100],
                detail=listing_detail(consult_ids, detail),
            )
        )
