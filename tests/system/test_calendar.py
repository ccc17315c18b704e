"""The rounds calendar: iCalendar output (recurring events as RRULEs that expand to the same
occurrences as the server's own), and the secret per-user feed address over HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import aiohttp
from dateutil.rrule import rrulestr
from icalendar import Calendar

from server.actions import calendar
from server.policy import recurrence
from server.records.models import Round
from tests.conftest import Instance, login
from tests.system.test_rounds import PATIENTS, http, new_round


def vn(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=recurrence.VIETNAM)


def a_round(**changes: Any) -> Round:
    fields: dict[str, Any] = {
        "id": "r1",
        "title": "Đi buồng Hồi sức",
        "hospital_id": "bavi-dgh",
        "ward": "Hồi sức tích cực",
        "starts_at": vn(3, 3, 9).astimezone(UTC),
        "duration_min": 45,
        "recurrence": "daily",
        "until": date(2025, 3, 14),
        "skipped": ["2025-03-08", "2025-03-09"],
        "lead_specialist_id": "u1",
        "participant_ids": [],
        "created_by": "u2",
        "cancelled_at": None,
        "version": 3,
    }
    fields.update(changes)
    return Round(**fields)


def events_of(text: bytes) -> list[Any]:
    return list(Calendar.from_ical(text).walk("VEVENT"))


def test_a_daily_round_is_one_recurring_event() -> None:
    item = a_round()
    text = calendar.feed([calendar.Entry(item, "Bệnh viện Đa khoa huyện Ba Vì", "BS. Phạm Thu Hà")], vn(3, 1))
    assert text.startswith(b"BEGIN:VCALENDAR\r\n") and text.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in text.split(b"\r\n"))  # folded as RFC 5545 wants
    (event,) = events_of(text)
    assert str(event["uid"]) == "r1@telerounds" and int(event["sequence"]) == 3
    assert str(event["summary"]) == "Đi buồng Hồi sức"
    assert str(event["location"]) == "Bệnh viện Đa khoa huyện Ba Vì — Hồi sức tích cực"
    assert "BS. Phạm Thu Hà" in str(event["description"]) and str(event["status"]) == "CONFIRMED"
    start = event.decoded("dtstart")
    assert start == datetime(2025, 3, 3, 2, tzinfo=UTC)
    assert (event.decoded("dtend") - start).total_seconds() == 45 * 60
    rule = event["rrule"]
    assert rule["FREQ"] == ["DAILY"] and rule["UNTIL"] == [datetime(2025, 3, 14, 2, tzinfo=UTC)]

    # What a calendar app expands is what the server expands.
    expanded = list(rrulestr(rule.to_ical().decode(), dtstart=start))
    excluded = {d.dt for d in event["exdate"].dts}
    shown = [m for m in expanded if m not in excluded]
    assert shown == recurrence.occurrences(item.starts_at, "daily", date(2025, 3, 14), item.skipped, vn(3, 1), vn(4, 1))
    assert len(shown) == 10


def test_weekly_single_and_cancelled_rounds() -> None:
    weekly = a_round(id="w", recurrence="weekly", until=None, skipped=[])
    single = a_round(id="s", recurrence=None, until=None, skipped=[])
    cancelled = a_round(id="c", cancelled_at=vn(3, 2))
    entries = [calendar.Entry(r, "Ba Vì", "BS. Hà") for r in (weekly, single, cancelled)]
    found = {str(e["uid"]): e for e in events_of(calendar.feed(entries, vn(3, 1)))}
    assert found["w@telerounds"]["rrule"]["FREQ"] == ["WEEKLY"] and "UNTIL" not in found["w@telerounds"]["rrule"]
    assert "rrule" not in found["s@telerounds"] and "exdate" not in found["s@telerounds"]
    assert str(found["c@telerounds"]["status"]) == "CANCELLED"  # so subscribed calendars drop it


def test_old_rounds_leave_the_feed() -> None:
    now = vn(6, 1)
    assert calendar.lasting(a_round(until=None), now)
    assert not calendar.lasting(a_round(), now)  # ended 14 March
    assert calendar.lasting(a_round(until=date(2025, 5, 10)), now)
    assert not calendar.lasting(a_round(recurrence=None, until=None), now)


async def fetch_feed(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session:  # no bearer token: a calendar app
        async with session.get(url) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def test_the_secret_feed_address(instance: Instance) -> None:
    created = await new_round(instance)
    status, body = await http(instance, "xanhpon.icu", "POST", "/api/rounds/calendar")
    assert status == 201 and body["url"].startswith(f"{instance.url}/api/rounds.ics?key=")
    first = body["url"]
    status, content_type, text = await fetch_feed(first)
    assert status == 200 and content_type.startswith("text/calendar"), text
    (event,) = events_of(text.encode())
    assert str(event["uid"]) == f"{created['id']}@telerounds" and event["rrule"]["FREQ"] == ["DAILY"]
    assert all(p["ref"] not in text and p["summary"] not in text for p in PATIENTS)  # no clinical text

    # Someone who does not take part sees an empty calendar.
    _, body = await http(instance, "tienyen.clinician", "POST", "/api/rounds/calendar")
    status, _, other = await fetch_feed(body["url"])
    assert status == 200 and events_of(other.encode()) == []

    # A new address revokes the old one; revoking leaves none.
    _, body = await http(instance, "xanhpon.icu", "POST", "/api/rounds/calendar")
    second = body["url"]
    assert (await fetch_feed(first))[0] == 401
    assert (await fetch_feed(second))[0] == 200
    status, body = await http(instance, "xanhpon.icu", "DELETE", "/api/rounds/calendar")
    assert status == 200 and body == {"revoked": True}
    assert (await fetch_feed(second))[0] == 401
    assert (await fetch_feed(f"{instance.url}/api/rounds.ics"))[0] == 401
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{instance.url}/api/rounds/calendar") as resp:
            assert resp.status == 401  # making an address needs a signed-in user
    assert await login(instance.url, "xanhpon.icu")
