"""The rounds calendar feed: a per-user secret address and its iCalendar text (RFC 5545).

Calendar apps cannot send a bearer token, so each user may have one secret feed address,
`/api/rounds.ics?key=SECRET`. Only the SHA-256 of the secret is stored; making a new address
revokes the old one, and revoking leaves none. A deactivated user's address stops working.

The feed carries no clinical text: calendar apps copy it to other services. Each round is one
event (UID `<round id>@telerounds`); a daily or weekly round is a recurring event (RRULE, with
UNTIL for an end date and EXDATE for single cancelled occurrences); a cancelled round stays in
the feed with STATUS:CANCELLED so subscribed calendars drop it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event, vRecur
from sqlalchemy import delete, select

from server.policy import recurrence
from server.records.models import CalendarFeed, Database, Round, User, utcnow

PRODID = "-//telerounds//ward rounds//VI"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def new_secret(db: Database, user_id: str) -> str:
    """A fresh secret for this user's feed; the previous address stops working."""
    secret = secrets.token_urlsafe(32)
    async with db.session() as session, session.begin():
        await session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user_id))
        session.add(CalendarFeed(user_id=user_id, secret_hash=_digest(secret), created_at=utcnow()))
    return secret


async def revoke(db: Database, user_id: str) -> bool:
    async with db.session() as session, session.begin():
        result = await session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def owner_of(db: Database, secret: str) -> str | None:
    """The id of the active user whose feed this secret opens, or None."""
    if not secret or len(secret) > 200:
        return None
    async with db.session() as session:
        row = (
            await session.execute(
                select(User.id, User.active)
                .join(CalendarFeed, CalendarFeed.user_id == User.id)
                .where(CalendarFeed.secret_hash == _digest(secret))
            )
        ).first()
    return row[0] if row is not None and row[1] else None


@dataclass(frozen=True)
class Entry:
    """A round as the calendar shows it."""

    round: Round
    hospital_name: str
    lead_name: str


def _until(item: Round) -> datetime | None:
    return recurrence.last_start(item.starts_at, item.until) if item.until else None


def event_of(entry: Entry, stamp: datetime) -> Event:
    item = entry.round
    event = Event()
    event.add("uid", f"{item.id}@telerounds")
    event.add("dtstamp", stamp)
    event.add("sequence", item.version)
    event.add("summary", item.title)
    event.add("location", f"{entry.hospital_name} — {item.ward}")
    event.add("description", f"Đi buồng điện tử / ward round. Trưởng nhóm / lead: {entry.lead_name}")
    event.add("dtstart", item.starts_at.astimezone(UTC))
    event.add("dtend", item.starts_at.astimezone(UTC) + timedelta(minutes=item.duration_min))
    if item.recurrence is not None:
        rule = vRecur(freq=item.recurrence.upper())
        until = _until(item)
        if until is not None:
            rule["until"] = until
        event.add("rrule", rule)
        if item.skipped:
            days = sorted(date.fromisoformat(day) for day in item.skipped)
            event.add("exdate", [recurrence.last_start(item.starts_at, day) for day in days])
    event.add("status", "CANCELLED" if item.cancelled_at is not None else "CONFIRMED")
    return event


def feed(entries: Iterable[Entry], stamp: datetime, name: str = "telerounds — đi buồng") -> bytes:
    """The whole calendar as bytes (CRLF lines, folded at 75 octets, as RFC 5545 wants)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", "Asia/Ho_Chi_Minh")
    for entry in entries:
        calendar.add_component(event_of(entry, stamp))
    text: bytes = calendar.to_ical()
    return text


def lasting(item: Round, now: datetime, keep: timedelta = timedelta(days=30)) -> bool:
    """Whether a round belongs in a feed: not over for longer than `keep`."""
    if item.recurrence is None:
        end = item.starts_at + timedelta(minutes=item.duration_min)
    elif item.until is not None:
        end = recurrence.last_start(item.starts_at, item.until) + timedelta(minutes=item.duration_min)
    else:
        return True
    return end.astimezone(UTC) >= now - keep
