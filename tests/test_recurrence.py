"""When rounds take place: single, daily and weekly occurrences in Vietnam time. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from server.recurrence import VIETNAM, day_of, last_start, next_occurrence, occurrence_on, occurrences


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
