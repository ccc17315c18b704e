"""The matching policy, table by table. Pure functions: no Redis, no database, no clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.policy.matching import Candidate, can_take, choose, queue_score


def specialist(user_id: str, hospital: str = "other", **changes: object) -> Candidate:
    fields: dict[str, object] = {
        "user_id": user_id,
        "hospital_id": hospital,
        "specialties": ("surgery",),
        "status": "available",
        "online": True,
        "holds_offer": False,
        "in_consult": False,
        "consults_today": 0,
        "idle_since": None,
    }
    fields.update(changes)
    return Candidate(**fields)  # type: ignore[arg-type]


T = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("candidate", "one_at_a_time", "expected"),
    [
        (specialist("a"), True, True),
        (specialist("a", specialties=("icu",)), True, False),
        (specialist("a", status="away"), True, False),
        (specialist("a", status="busy"), True, False),
        (specialist("a", online=False), True, False),
        (specialist("a", in_consult=True), True, False),
        (specialist("a", holds_offer=True), True, False),
        (specialist("a", holds_offer=True), False, True),  # an emergency reaches them anyway
        (specialist("a", in_consult=True), False, False),
    ],
)
def test_who_can_take_a_surgery_request(candidate: Candidate, one_at_a_time: bool, expected: bool) -> None:
    assert can_take(candidate, "surgery", one_at_a_time=one_at_a_time) is expected


@pytest.mark.parametrize(
    ("name", "candidates", "expected"),
    [
        ("sister hospital first", [specialist("roster"), specialist("sister", "xanhpon")], ["sister", "roster"]),
        (
            "sister first even when busier today",
            [specialist("roster"), specialist("sister", "xanhpon", consults_today=5)],
            ["sister", "roster"],
        ),
        (
            "then fewest consults today",
            [specialist("b", consults_today=3), specialist("a", consults_today=1)],
            ["a", "b"],
        ),
        (
            "then idle longest, never busy first",
            [
                specialist("recent", idle_since=T),
                specialist("never"),
                specialist("earlier", idle_since=T.replace(hour=6)),
            ],
            ["never", "earlier", "recent"],
        ),
        ("ties by id, so every instance agrees", [specialist("b"), specialist("a")], ["a", "b"]),
        ("unavailable are left out", [specialist("a", status="away"), specialist("b")], ["b"]),
        ("nobody", [], []),
    ],
)
def test_order_of_offers(name: str, candidates: list[Candidate], expected: list[str]) -> None:
    assert choose(candidates, specialty="surgery", urgency="routine", sister_hospitals={"xanhpon"}) == expected


def test_declined_specialists_are_not_asked_again() -> None:
    ordered = choose(
        [specialist("a"), specialist("b")],
        specialty="surgery",
        urgency="urgent",
        sister_hospitals=set(),
        excluded={"a"},
    )
    assert ordered == ["b"]


@pytest.mark.parametrize(
    ("named", "expected"),
    [("b", ["b"]), ("away", []), ("nobody", [])],
)
def test_a_named_request_goes_to_that_specialist_only(named: str, expected: list[str]) -> None:
    pool = [specialist("a", "xanhpon"), specialist("b"), specialist("away", status="away")]
    ordered = choose(
        pool, specialty="surgery", urgency="routine", sister_hospitals={"xanhpon"}, named_specialist_id=named
    )
    assert ordered == expected


def test_emergencies_reach_specialists_who_hold_another_offer() -> None:
    pool = [specialist("a", holds_offer=True), specialist("b")]
    assert choose(pool, specialty="surgery", urgency="emergency", sister_hospitals=set()) == ["a", "b"]
    assert choose(pool, specialty="surgery", urgency="routine", sister_hospitals=set()) == ["b"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("emergency", T.replace(hour=9)), ("urgent", T)),
        (("urgent", T.replace(hour=9)), ("routine", T)),
        (("routine", T), ("routine", T.replace(hour=9))),
    ],
)
def test_queue_order_is_urgency_then_age(first: tuple, second: tuple) -> None:
    assert queue_score(*first) < queue_score(*second)
