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

Recurrence = Literal["daily", "weekly"]
RECURRENCES: tuple[str, ...] = ("daily", "weekly")
VIETNAM = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh has no daylight saving
PERIOD = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}


def day_of(moment: datetime) -> date:
    """The Vietnam date of an instant."""
    return moment.astimezone(VIETNAM).date()


def last_start(starts_at: datetime, until: date) -> datetime:
    """The start of the occurrence on `until` (the last one a series can have), in UTC."""
    local = starts_at.astimezone(VIETNAM)
    return datetime.combine(until, local.timetz()).astimezone(UTC)


# Arithmetic, never day by day: the k-th occurrence of a series is `first + k * period` (a fixed
# UTC offset has no daylight saving to shift it), so the occurrences in a window are found by
# division, in time independent of how long ago the series began. Walking a rule from its start
# took seconds for a round begun centuries before the window, with the event loop held.


def _ceil_div(numerator: timedelta, denominator: timedelta) -> int:
    return -(-numerator // denominator)


def _series(
    starts_at: datetime, recurrence: str | None, until: date | None, window_start: datetime, window_end: datetime
) -> list[datetime]:
    """Every start in `[window_start, window_end)`, cancelled days included, in order."""
    first = starts_at.astimezone(UTC)
    if recurrence is None:
        return [first] if window_start <= first < window_end else []
    period = PERIOD[recurrence]
    k_first = max(0, _ceil_div(window_start - first, period))
    k_end = _ceil_div(window_end - first, period)  # the first k at or past the window's end
    if until is not None:
        k_end = min(k_end, (last_start(first, until) - first) // period + 1)
    return [first + k * period for k in range(k_first, k_end)]


def occurrences(
    starts_at: datetime,
    recurrence: str | None,
    until: date | None,
    skipped: Collection[str],
    window_start: datetime,
    window_end: datetime,
) -> list[datetime]:
    """The starts (UTC) of the occurrences that start in `[window_start, window_end)`, in order.

    As many steps as there are occurrences in the window: the callers bound the window."""
    return [
        moment
        for moment in _series(starts_at, recurrence, until, window_start, window_end)
        if day_of(moment).isoformat() not in skipped
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
    """The first occurrence starting at or after `after`, or None when the round has no more.

    Each cancelled day skips at most one occurrence: at most `len(skipped) + 1` steps."""
    first = starts_at.astimezone(UTC)
    if recurrence is None:
        ok = first >= after and day_of(first).isoformat() not in skipped
        return first if ok else None
    period = PERIOD[recurrence]
    cancelled = set(skipped)
    k = max(0, _ceil_div(after - first, period))
    last = last_start(first, until) if until is not None else None
    for _ in range(len(cancelled) + 1):
        moment = first + k * period
        if last is not None and moment > last:
            return None
        if day_of(moment).isoformat() not in cancelled:
            return moment
        k += 1
    return None
