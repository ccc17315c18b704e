"""When a round takes place: the occurrences of a single, daily or weekly round. Pure, no I/O.

A round starts at `starts_at` (an instant) and repeats at the same time of day, every day or on
the same weekday, until the Vietnam date `until` (inclusive; no end when None). Vietnam keeps
UTC+7 all year, so "the same time of day" is the same UTC time and a plain UTC rule is exact.
An occurrence is named by its Vietnam date; `skipped` dates are occurrences cancelled one by one.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal

from dateutil.rrule import DAILY, WEEKLY, rrule

Recurrence = Literal["daily", "weekly"]
RECURRENCES: tuple[str, ...] = ("daily", "weekly")
VIETNAM = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh has no daylight saving


def day_of(moment: datetime) -> date:
    """The Vietnam date of an instant."""
    return moment.astimezone(VIETNAM).date()


def last_start(starts_at: datetime, until: date) -> datetime:
    """The start of the occurrence on `until` (the last one a series can have), in UTC."""
    local = starts_at.astimezone(VIETNAM)
    return datetime.combine(until, local.timetz()).astimezone(UTC)


def _rule(starts_at: datetime, recurrence: str, until: date | None) -> rrule:
    frequency = {"daily": DAILY, "weekly": WEEKLY}[recurrence]
    first = starts_at.astimezone(UTC)
    return rrule(frequency, dtstart=first, until=last_start(first, until) if until else None)


def occurrences(
    starts_at: datetime,
    recurrence: str | None,
    until: date | None,
    skipped: Collection[str],
    window_start: datetime,
    window_end: datetime,
) -> list[datetime]:
    """The starts (UTC) of the occurrences that start in `[window_start, window_end)`, in order."""
    if recurrence is None:
        found = [starts_at.astimezone(UTC)]
    else:
        found = _rule(starts_at, recurrence, until).between(window_start, window_end, inc=True)
    return [
        moment for moment in found if window_start <= moment < window_end and day_of(moment).isoformat() not in skipped
    ]


def occurrence_on(
    starts_at: datetime, recurrence: str | None, until: date | None, skipped: Collection[str], day: date
) -> datetime | None:
    """The start of the occurrence on the Vietnam date `day`, or None when there is none that day."""
    midnight = datetime.combine(day, datetime.min.time(), VIETNAM).astimezone(UTC)
    found = occurrences(starts_at, recurrence, until, skipped, midnight, midnight + timedelta(days=1))
    return found[0] if found else None


def next_occurrence(
    starts_at: datetime, recurrence: str | None, until: date | None, skipped: Collection[str], after: datetime
) -> datetime | None:
    """The first occurrence starting at or after `after`, or None when the round has no more."""
    if recurrence is None:
        first = starts_at.astimezone(UTC)
        ok = first >= after and day_of(first).isoformat() not in skipped
        return first if ok else None
    rule = _rule(starts_at, recurrence, until)
    moment: datetime | None = rule.after(after, inc=True)
    while moment is not None and day_of(moment).isoformat() in skipped:
        moment = rule.after(moment, inc=False)
    return moment
