"""When rounds take place: single, daily and weekly occurrences in Vietnam time. Pure; computed by
arithmetic, checked against the step-by-step rule it replaced."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from dateutil.rrule import DAILY, WEEKLY, rrule
from hypothesis import given, settings
from hypothesis import strategies as st

from server.policy.recurrence import VIETNAM, day_of, last_start, next_occurrence, occurrence_on, occurrences


def vn(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=VIETNAM)


NINE = vn(3, 3, 9)  # Monday 3 March 2025, 09:00 in Vietnam = 02:00 UTC
MARCH = (vn(3, 1), vn(4, 1))


def test_a_single_round_is_one_occurrence() -> None:
    assert occurrences(NINE, None, None, [], *MARCH) == [NINE.astimezone(UTC)]
    assert occurrences(NINE, None, None, [], vn(3, 4), vn(3, 5)) == []
    assert occurrences(NINE, None, None, ["2025-03-03"], *MARCH) == []


def test_daily_until_an_end_date_inclusive() -> None:
    found = occurrences(NINE, "daily", date(2025, 3, 9), [], *MARCH)
    assert [day_of(m).day for m in found] == [3, 4, 5, 6, 7, 8, 9]
    assert all(m.astimezone(VIETNAM).hour == 9 and m.tzinfo == UTC for m in found)
    assert found[0] == datetime(2025, 3, 3, 2, tzinfo=UTC)


def test_daily_without_end_is_bounded_by_the_window() -> None:
    found = occurrences(NINE, "daily", None, [], vn(3, 10), vn(3, 13))
    assert [day_of(m).day for m in found] == [10, 11, 12]
    # The window is [from, to): an occurrence starting exactly at `to` is left out, at `from` kept.
    assert occurrences(NINE, "daily", None, [], vn(3, 10, 9), vn(3, 11, 9)) == [vn(3, 10, 9).astimezone(UTC)]


def test_weekly_on_the_same_weekday_with_a_cancelled_day() -> None:
    found = occurrences(NINE, "weekly", date(2025, 3, 31), ["2025-03-17"], *MARCH)
    assert [day_of(m) for m in found] == [date(2025, 3, 3), date(2025, 3, 10), date(2025, 3, 24), date(2025, 3, 31)]
    assert {m.astimezone(VIETNAM).weekday() for m in found} == {0}


def test_an_early_morning_round_is_named_by_its_vietnam_date() -> None:
    early = vn(3, 3, 6, 30)  # 23:30 UTC on 2 March
    assert day_of(early) == date(2025, 3, 3)
    assert occurrence_on(early, "daily", None, [], date(2025, 3, 5)) == vn(3, 5, 6, 30).astimezone(UTC)
    assert last_start(early, date(2025, 3, 5)) == datetime(2025, 3, 4, 23, 30, tzinfo=UTC)
    found = occurrences(early, "daily", date(2025, 3, 5), [], *MARCH)
    assert [day_of(m).day for m in found] == [3, 4, 5]


def test_occurrence_on_a_day() -> None:
    assert occurrence_on(NINE, "weekly", None, [], date(2025, 3, 10)) == vn(3, 10, 9).astimezone(UTC)
    assert occurrence_on(NINE, "weekly", None, [], date(2025, 3, 11)) is None
    assert occurrence_on(NINE, "daily", date(2025, 3, 9), [], date(2025, 3, 10)) is None
    assert occurrence_on(NINE, "daily", None, [], date(2025, 3, 2)) is None  # before it began
    assert occurrence_on(NINE, "daily", None, ["2025-03-04"], date(2025, 3, 4)) is None


def test_next_occurrence() -> None:
    assert next_occurrence(NINE, "daily", None, [], vn(3, 5, 10)) == vn(3, 6, 9).astimezone(UTC)
    assert next_occurrence(NINE, "daily", None, ["2025-03-06", "2025-03-07"], vn(3, 5, 10)) == vn(3, 8, 9)
    assert next_occurrence(NINE, "daily", date(2025, 3, 5), [], vn(3, 5, 10)) is None
    assert next_occurrence(NINE, None, None, [], vn(3, 1)) == NINE
    assert next_occurrence(NINE, None, None, [], NINE + timedelta(seconds=1)) is None


# The arithmetic against the rule it replaced. dateutil's rrule walks a series from its first
# occurrence, one step at a time (seconds for a series begun centuries ago): kept here only as
# the reference the arithmetic must agree with, on windows small enough to walk.


def _rule(starts_at: datetime, recurrence: str, until: date | None) -> rrule:
    first = starts_at.astimezone(UTC)
    frequency = {"daily": DAILY, "weekly": WEEKLY}[recurrence]
    return rrule(frequency, dtstart=first, until=last_start(first, until) if until else None)


def walked_occurrences(
    starts_at: datetime, recurrence: str | None, until: date | None, skipped: list[str], start: datetime, end: datetime
) -> list[datetime]:
    found = (
        [starts_at.astimezone(UTC)]
        if recurrence is None
        else _rule(starts_at, recurrence, until).between(start, end, inc=True)
    )
    return [m for m in found if start <= m < end and day_of(m).isoformat() not in skipped]


def walked_next(
    starts_at: datetime, recurrence: str | None, until: date | None, skipped: list[str], after: datetime
) -> datetime | None:
    if recurrence is None:
        first = starts_at.astimezone(UTC)
        return first if first >= after and day_of(first).isoformat() not in skipped else None
    rule = _rule(starts_at, recurrence, until)
    moment: datetime | None = rule.after(after, inc=True)
    while moment is not None and day_of(moment).isoformat() in skipped:
        moment = rule.after(moment, inc=False)
    return moment


BASE = datetime(2025, 3, 1, tzinfo=UTC)
# Whole seconds: the rule drops a start's microseconds (the arithmetic keeps them).
starts = st.integers(0, 60 * 24 * 3600).map(lambda s: BASE + timedelta(seconds=s))
offsets = st.integers(-30 * 24 * 3600, 120 * 24 * 3600).map(lambda s: BASE + timedelta(seconds=s))
rules = st.sampled_from([None, "daily", "weekly"])


@st.composite
def series(draw: st.DrawFn) -> tuple[datetime, str | None, date | None, list[str]]:
    first = draw(starts)
    rule = draw(rules)
    until = None
    if rule is not None and draw(st.booleans()):
        until = day_of(first) + timedelta(days=draw(st.integers(0, 90)))
    days = st.integers(-3, 90).map(lambda n: (day_of(first) + timedelta(days=n)).isoformat())
    return first, rule, until, draw(st.lists(days, max_size=8))


@settings(max_examples=400, deadline=None)
@given(series(), offsets, st.integers(0, 40 * 24 * 3600))
def test_occurrences_agree_with_the_walked_rule(
    round_: tuple[datetime, str | None, date | None, list[str]], start: datetime, length_s: int
) -> None:
    first, rule, until, skipped = round_
    end = start + timedelta(seconds=length_s)
    assert occurrences(first, rule, until, skipped, start, end) == walked_occurrences(
        first, rule, until, skipped, start, end
    )


@settings(max_examples=400, deadline=None)
@given(series(), offsets)
def test_next_occurrence_agrees_with_the_walked_rule(
    round_: tuple[datetime, str | None, date | None, list[str]], after: datetime
) -> None:
    first, rule, until, skipped = round_
    assert next_occurrence(first, rule, until, skipped, after) == walked_next(first, rule, until, skipped, after)


@settings(max_examples=200, deadline=None)
@given(series(), st.integers(-3, 100))
def test_occurrence_on_agrees_with_the_walked_rule(
    round_: tuple[datetime, str | None, date | None, list[str]], n: int
) -> None:
    first, rule, until, skipped = round_
    day = day_of(first) + timedelta(days=n)
    midnight = datetime.combine(day, datetime.min.time(), VIETNAM).astimezone(UTC)
    walked = walked_occurrences(first, rule, until, skipped, midnight, midnight + timedelta(days=1))
    assert occurrence_on(first, rule, until, skipped, day) == (walked[0] if walked else None)


def test_a_series_begun_in_year_one_is_answered_at_once() -> None:
    """The arithmetic does not walk from the start: a daily round begun in year 1 (stored before
    dates were bounded) costs no more than one begun yesterday."""
    ancient = datetime(1, 1, 2, 2, tzinfo=UTC)
    window = (datetime(2099, 12, 1, tzinfo=UTC), datetime(2100, 3, 1, tzinfo=UTC))
    started = time.perf_counter()
    found = occurrences(ancient, "daily", None, [], *window)
    following = next_occurrence(ancient, "weekly", None, [], window[0])
    assert time.perf_counter() - started < 0.05
    assert len(found) == 90 and found[0] == datetime(2099, 12, 1, 2, tzinfo=UTC)
    assert following is not None and following.weekday() == ancient.weekday() and following >= window[0]
