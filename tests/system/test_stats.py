"""Statistics: exact figures over a fixed history, groups, CSV, scope, the monthly report, demo history."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from server.actions import stats
from server.policy.scope import NETWORK
from server.records import consults, migrate
from server.records.consults import VIETNAM
from server.records.models import AuditEntry, Consult, ConsultEvent, Database, Hospital, Note, User
from server.runtime import demo
from server.runtime.settings import normalize_database_url
from tests.conftest import (
    PASSWORD,
    Instance,
    StartInstance,
    add_user,
    database_backends,
    fresh_postgres_database,
    login,
)
from tests.system.test_record import Text, assert_printable

XSS_NAME = 'Bệnh viện <script>alert("x")</script> & <b>Co</b>'
MARCH = {"from": "2025-03-01", "to": "2025-04-01"}  # dates are midnight in Vietnam time


def vn(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=VIETNAM)


@dataclass(frozen=True)
class Case:
    """One consult of the fixed history and what happened to it."""

    name: str
    requester: str
    specialty: str
    created: datetime
    fate: str  # ended / active / unanswered / cancelled / waiting
    specialist: str | None = None  # who accepted it, or who was offered it
    wait: int = 0
    duration: int = 0
    outcome: str | None = None
    kind: str = "consult"
    lapsed_first: bool = False
    result: str | None = None  # reported back after the end


# Figures in March (Vietnam time) worked out by hand below, in the tests.
CASES = [
    Case("c1", "bavi.clinician", "surgery", vn(3, 3, 9), "ended", "xanhpon.surgeon", 60, 600, "treated_locally"),
    Case("c2", "bavi.clinician", "surgery", vn(3, 10, 10), "ended", "xanhpon.surgeon", 120, 1200, "treated_locally"),
    Case("c3", "bavi.clinician", "icu", vn(3, 15, 14), "ended", "xanhpon.icu", 30, 900, "transfer", lapsed_first=True),
    # Followed up, then transferred after all (the result reported back): not resolved at the district.
    Case(
        "c4",
        "bavi.nurse",
        "obstetrics",
        vn(3, 20, 8),
        "ended",
        "xanhpon.obgyn",
        300,
        1800,
        "follow_up",
        result="transferred",
    ),
    Case("c5", "tienyen.clinician", "trauma", vn(3, 5, 11), "ended", "quangninh.trauma", 45, 600, "treated_locally"),
    Case("c6", "tienyen.clinician", "dialysis", vn(3, 25, 16), "active", "quangninh.dialysis", 90),
    Case("c7", "bavi.clinician", "surgery", vn(3, 12, 9), "unanswered", "xanhpon.surgeon"),
    Case("c8", "bavi.clinician", "icu", vn(3, 18, 9), "cancelled"),
    Case("c9", "tienyen.clinician", "trauma", vn(3, 28, 10), "waiting", "quangninh.trauma"),
    Case("c10", "xss.clinician", "surgery", vn(3, 8, 10), "ended", "xanhpon.surgeon", 20, 300, "onsite_support"),
    # 06:30 on 1 March in Vietnam is still 28 February in UTC: it belongs to March.
    Case("c12", "bavi.clinician", "surgery", vn(3, 1, 6, 30), "ended", "xanhpon.surgeon", 15, 60, "treated_locally"),
    Case("c14", "bavi.clinician", "icu", vn(3, 21, 9), "ended", "xanhpon.icu", 5, 3000, "treated_locally", "round"),
    # April: outside March (c13 is 31 March in UTC but 1 April in Vietnam).
    Case("c11", "bavi.clinician", "surgery", vn(4, 2, 9), "ended", "xanhpon.surgeon", 10, 100, "treated_locally"),
    Case("c13", "bavi.clinician", "surgery", vn(4, 1, 6, 30), "ended", "xanhpon.surgeon", 10, 100, "treated_locally"),
]


async def insert_history(url: str) -> None:
    """The hospital with a hostile name, its clinician, and CASES with timelines as dispatch writes them."""
    db = Database(url)
    try:
        async with db.session() as session, session.begin():
            session.add(
                Hospital(id="xss-hospital", name=XSS_NAME, level="district", province="hanoi", province_name="Hà Nội")
            )
            await session.flush()
            session.add(
                User(
                    username="xss.clinician",
                    name="BS. Thử Nghiệm",
                    role="clinician",
                    hospital_id="xss-hospital",
                    specialties=[],
                    password_hash="-",
                    active=True,
                )
            )
            await session.flush()
            users = {u.username: u for u in (await session.scalars(select(User))).all()}
            for case in CASES:
                requester = users[case.requester]
                specialist = users[case.specialist].id if case.specialist else None
                created = case.created
                consult = Consult(
                    id=case.name,
                    kind=case.kind,
                    op_id=case.name,
                    status={"unanswered": "cancelled", "waiting": "queued"}.get(case.fate, case.fate),
                    specialty=case.specialty,
                    urgency="routine",
                    patient={"ref": case.name},
                    requester_id=requester.id,
                    hospital_id=requester.hospital_id,
                    created_at=created,
                    version=1,
                    result=case.result,
                )
                events: list[tuple[datetime, str, str | None, dict[str, Any]]] = [
                    (created, "requested", requester.id, {})
                ]
                if case.fate in ("unanswered", "waiting") or case.lapsed_first:
                    events.append((created, "offered", None, {"to": [specialist]}))
                    events.append((created + timedelta(seconds=1), "expired", None, {"to": [specialist]}))
                if case.fate == "unanswered":
                    consult.ended_at = created + timedelta(seconds=600)
                    events.append((consult.ended_at, "cancelled", requester.id, {}))
                if case.fate == "cancelled":
                    consult.ended_at = created + timedelta(seconds=10)
                    events.append((consult.ended_at, "cancelled", requester.id, {}))
                if case.fate in ("ended", "active"):
                    consult.specialist_id = specialist
                    consult.started_at = created + timedelta(seconds=case.wait)
                    events.append((consult.started_at - timedelta(seconds=1), "offered", None, {"to": [specialist]}))
                    events.append((consult.started_at, "accepted", specialist, {}))
                if case.fate == "ended":
                    assert consult.started_at is not None
                    consult.ended_at = consult.started_at + timedelta(seconds=case.duration)
                    consult.outcome = case.outcome
                    events.append((consult.ended_at, "ended", specialist, {"outcome": case.outcome}))
                consult.version = len(events)
                session.add(consult)
                await session.flush()
                for at, kind, actor, detail in events:
                    session.add(ConsultEvent(consult_id=case.name, at=at, kind=kind, actor_id=actor, detail=detail))
    finally:
        await db.close()


@pytest.fixture
async def history_url(any_database_url: str) -> str:
    await insert_history(any_database_url)
    await add_user(any_database_url, "bavi.supervisor", "supervisor", "bavi-dgh")
    await add_user(any_database_url, "xanhpon.supervisor", "supervisor", "xanhpon")
    return any_database_url


@pytest.fixture
async def server(start_instance: StartInstance, history_url: str) -> Instance:
    return await start_instance(database=history_url)


async def fetch(
    instance: Instance, username: str | None, path: str, params: dict[str, str] | None = None, accept: str | None = None
) -> tuple[int, Any, Mapping[str, str]]:
    headers = {"Authorization": f"Bearer {await login(instance.url, username)}"} if username else {}
    if accept:
        headers["Accept"] = accept
    async with aiohttp.ClientSession(base_url=instance.url, headers=headers) as http:
        async with http.get(path, params=params) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json(), resp.headers
            return resp.status, await resp.text(), resp.headers


def figures_of(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("key", "label")}


def expected(
    requests: int,
    accepted: int,
    unanswered: int = 0,
    cancelled: int = 0,
    waiting: int = 0,
    ended: int = 0,
    wait: tuple[float | None, float | None] = (None, None),
    duration: float | None = None,
    outcomes: tuple[int, int, int, int] = (0, 0, 0, 0),
    patients_reviewed: int = 0,
    resolved: int | None = None,
) -> dict[str, Any]:
    """`resolved`: at the district level; by default the ended requests not transferred."""
    resolved = ended - outcomes[1] if resolved is None else resolved
    return {
        "requests": requests,
        "accepted": accepted,
        "unanswered": unanswered,
        "cancelled": cancelled,
        "waiting": waiting,
        "ended": ended,
        "wait_median_s": wait[0],
        "wait_p90_s": wait[1],
        "duration_median_s": duration,
        "outcomes": dict(zip(stats.OUTCOME_CODES, outcomes, strict=True)),
        "referrals_avoided": outcomes[0],
        "resolved_at_district": resolved,
        "resolved_at_district_share": round(resolved / ended, 3) if ended else None,
        "rounds_held": 0,
        "patients_reviewed": patients_reviewed,
    }


# March over the whole network, as an admin sees it (a Department of Health sees its province).
# 11 consult requests: c14, a round patient, is reviewed on a schedule, not requested; its
# decision counts among the outcomes and as a patient reviewed. Waits of the 8 accepted:
# 15 20 30 45 60 90 120 300 → median (45 + 60) / 2 = 52.5, p90 at rank 6.3: 120 + 0.3 * 180 = 174.
# Durations of the 7 ended: 60 300 600 600 900 1200 1800 → median 600.
# Of the 7 ended, c3 was transferred and c4 transferred after all: 5 resolved at the district, 0.714.
MARCH_TOTALS = expected(11, 8, 1, 1, 1, 7, (52.5, 174.0), 600.0, (5, 1, 1, 1), patients_reviewed=1, resolved=5)


async def test_totals_over_the_network(server: Instance) -> None:
    status, body, _ = await fetch(server, "admin", "/api/stats", MARCH)
    assert status == 200, body
    assert body["from"] == "2025-02-28T17:00:00+00:00" and body["to"] == "2025-03-31T17:00:00+00:00"
    assert body["scope"] is None and body["group_by"] is None and body["groups"] == []
    assert body["totals"] == MARCH_TOTALS


async def test_group_by_pair(server: Instance) -> None:
    status, body, _ = await fetch(server, "admin", "/api/stats", {**MARCH, "group_by": "pair"})
    assert status == 200, body
    assert [(g["key"], g["label"]) for g in body["groups"]] == [
        ("bavi-dgh>", "Bệnh viện Đa khoa huyện Ba Vì → chưa có chuyên gia"),
        ("bavi-dgh>xanhpon", "Bệnh viện Đa khoa huyện Ba Vì → Bệnh viện Đa khoa Xanh Pôn"),
        ("bavi-ttyt>xanhpon", "Trung tâm Y tế huyện Ba Vì → Bệnh viện Đa khoa Xanh Pôn"),
        ("ttyt-tienyen>qn-dkt", "Trung tâm Y tế huyện Tiên Yên → Bệnh viện Đa khoa tỉnh Quảng Ninh"),
        ("xss-hospital>xanhpon", f"{XSS_NAME} → Bệnh viện Đa khoa Xanh Pôn"),
    ]
    assert [figures_of(g) for g in body["groups"]] == [
        expected(1, 0, cancelled=1),
        # c1 c2 c3 c12 accepted, c7 unanswered (offered to Xanh Pôn), c14 a round patient. Waits
        # 15 30 60 120: median 45, p90 at rank 2.7 = 60 + 0.7 * 60; durations 60 600 900 1200.
        expected(
            5, 4, unanswered=1, ended=4, wait=(45.0, 102.0), duration=750.0, outcomes=(4, 1, 0, 0), patients_reviewed=1
        ),
        expected(1, 1, ended=1, wait=(300.0, 300.0), duration=1800.0, outcomes=(0, 0, 1, 0), resolved=0),
        # c5 ended, c6 active, c9 waiting. Waits 45 90: median 67.5, p90 = 45 + 0.9 * 45.
        expected(3, 2, waiting=1, ended=1, wait=(67.5, 85.5), duration=600.0, outcomes=(1, 0, 0, 0)),
        expected(1, 1, ended=1, wait=(20.0, 20.0), duration=300.0, outcomes=(0, 0, 0, 1)),
    ]


async def test_group_by_specialty_hospital_and_month(server: Instance) -> None:
    _, body, _ = await fetch(server, "admin", "/api/stats", {**MARCH, "group_by": "specialty"})
    assert [(g["key"], g["label"], g["requests"], g["accepted"]) for g in body["groups"]] == [
        ("dialysis", "Thận nhân tạo", 1, 1),
        ("icu", "Hồi sức cấp cứu", 2, 1),  # c14 is a round patient
        ("obstetrics", "Sản khoa", 1, 1),
        ("surgery", "Ngoại khoa", 5, 4),
        ("trauma", "Chấn thương chỉnh hình", 2, 1),
    ]
    surgery = body["groups"][3]  # c1 c2 c10 c12 accepted, c7 unanswered; waits 15 20 60 120
    assert figures_of(surgery) == expected(
        5, 4, unanswered=1, ended=4, wait=(40.0, 102.0), duration=450.0, outcomes=(3, 0, 0, 1)
    )
    dialysis = body["groups"][0]  # accepted, still active: a wait, no duration
    assert (dialysis["wait_median_s"], dialysis["duration_median_s"], dialysis["ended"]) == (90.0, None, 0)

    _, body, _ = await fetch(server, "admin", "/api/stats", {**MARCH, "group_by": "hospital"})
    assert [(g["key"], g["label"], g["requests"]) for g in body["groups"]] == [
        ("bavi-dgh", "Bệnh viện Đa khoa huyện Ba Vì", 6),
        ("bavi-ttyt", "Trung tâm Y tế huyện Ba Vì", 1),
        ("ttyt-tienyen", "Trung tâm Y tế huyện Tiên Yên", 3),
        ("xss-hospital", XSS_NAME, 1),
    ]
    assert body["totals"] == MARCH_TOTALS

    period = {"from": "2025-02-01", "to": "2025-05-01", "group_by": "month"}
    _, body, _ = await fetch(server, "admin", "/api/stats", period)
    assert [(g["key"], g["label"], g["requests"]) for g in body["groups"]] == [
        ("2025-03", "03/2025", 11),
        ("2025-04", "04/2025", 2),
    ]
    assert body["totals"]["requests"] == 13 and body["totals"]["referrals_avoided"] == 7

    # UTC times select by the instant: c12 (28 Feb 23:30 UTC) falls out, c13 (31 Mar 23:30 UTC) comes in.
    utc = {"from": "2025-03-01T00:00:00Z", "to": "2025-04-01T00:00:00+00:00", "group_by": "month"}
    _, body, _ = await fetch(server, "admin", "/api/stats", utc)
    assert [(g["key"], g["requests"]) for g in body["groups"]] == [("2025-03", 10), ("2025-04", 1)]


async def test_csv_has_a_header_a_row_per_group_and_a_total(server: Instance) -> None:
    """In English (`lang=en`): the figures' codes as headers, commas, decimal points."""
    pair_en = {**MARCH, "group_by": "pair", "lang": "en"}
    status, text, headers = await fetch(server, "admin", "/api/stats", pair_en, accept="text/csv")
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == 'attachment; filename="telerounds-stats-20250301-20250401-pair.csv"'
    assert text.startswith("\ufeff")  # so spreadsheets read the Vietnamese names as UTF-8
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == [
        "key",
        "label",
        "requests",
        "accepted",
        "unanswered",
        "cancelled",
        "waiting",
        "ended",
        "wait_median_s",
        "wait_p90_s",
        "duration_median_s",
        "treated_locally",
        "transfer",
        "follow_up",
        "onsite_support",
        "referrals_avoided",
        "resolved_at_district",
        "resolved_at_district_share",
        "rounds_held",
        "patients_reviewed",
    ]
    assert [r[0] for r in rows[1:]] == [
        "bavi-dgh>",
        "bavi-dgh>xanhpon",
        "bavi-ttyt>xanhpon",
        "ttyt-tienyen>qn-dkt",
        "xss-hospital>xanhpon",
        "total",
    ]
    assert rows[1] == [
        "bavi-dgh>",
        rows[1][1],
        "1",
        "0",
        "0",
        "1",
        "0",
        "0",
        "",
        "",
        "",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "",
        "0",
        "0",
    ]
    assert rows[2][2:] == [
        *("5", "4", "1", "0", "0", "4", "45.0", "102.0", "750.0", "4", "1", "0", "0", "4", "3", "0.75", "0", "1")
    ]
    assert rows[5][1] == XSS_NAME + " → Bệnh viện Đa khoa Xanh Pôn"
    assert rows[-1][:2] == ["total", "Total"]
    assert rows[-1][2:] == [
        *("11", "8", "1", "1", "1", "7", "52.5", "174.0", "600.0", "5", "1", "1", "1", "5", "5", "0.714", "0", "1")
    ]

    # JSON unless CSV is asked for at least as much as JSON; `format=` outranks the header.
    status, body, headers = await fetch(server, "admin", "/api/stats", MARCH, accept="application/json, text/csv;q=0.5")
    assert status == 200 and body["totals"]["requests"] == 11
    status, text, _ = await fetch(server, "admin", "/api/stats", {**MARCH, "lang": "en"}, accept="text/csv")
    assert [r[0] for r in csv.reader(io.StringIO(text.removeprefix("\ufeff")))] == ["key", "total"]
    status, text, headers = await fetch(server, "admin", "/api/stats", {**MARCH, "format": "csv", "lang": "en"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv") and text.startswith("\ufeff")
    status, body, _ = await fetch(server, "admin", "/api/stats", {**MARCH, "format": "json"}, accept="text/csv")
    assert status == 200 and body["totals"]["requests"] == 11


async def test_csv_in_vietnamese_opens_in_vietnamese_excel(server: Instance) -> None:
    """By default (`lang=vi`): Vietnamese headers, `;` between cells, decimal commas, a UTF-8 BOM."""
    status, text, headers = await fetch(server, "admin", "/api/stats", {**MARCH, "group_by": "pair", "format": "csv"})
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert text.startswith("\ufeff")  # Excel reads the file as UTF-8 only with it
    assert text.splitlines()[0].count(";") == len(stats.CSV_COLUMNS) - 1
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))
    assert rows[0][:4] == ["Mã", "Nhóm", "Số yêu cầu", "Được tiếp nhận"]
    assert rows[0][8] == "Thời gian chờ trung vị (giây)" and rows[0][11] == "Điều trị tại chỗ"
    assert all(len(row) == len(stats.CSV_COLUMNS) for row in rows)
    assert rows[2][2:] == [
        *("5", "4", "1", "0", "0", "4", "45,0", "102,0", "750,0", "4", "1", "0", "0", "4", "3", "0,75", "0", "1")
    ]
    assert rows[0][16:18] == ["Giải quyết tại tuyến huyện", "Tỷ lệ giải quyết tại tuyến huyện"]
    assert rows[-1][:2] == ["total", "Tổng cộng"]
    assert rows[-1][8:11] == ["52,5", "174,0", "600,0"]
    assert rows[5][1] == XSS_NAME + " → Bệnh viện Đa khoa Xanh Pôn"
    for bad in ({"lang": "fr"}, {"format": "xlsx"}):
        status, body, _ = await fetch(server, "admin", "/api/stats", {**MARCH, **bad}, accept="text/csv")
        assert status == 400 and body["error"]["code"] == "invalid", bad


@pytest.mark.parametrize(
    ("username", "requests", "pairs"),
    [
        # The Hà Nội Department of Health: every consult asked in Hà Nội (all but c5 c6 c9).
        ("soyte.supervisor", 8, 4),
        # The Quảng Ninh one: Tiên Yên's c5 c6 c9, answered in Quảng Ninh.
        ("quangninh.supervisor", 3, 1),
        ("admin", 11, 5),
        # Ba Vì's supervisor: the consults Ba Vì district hospital asked for (c1 c2 c3 c7 c8 c12; c14
        # is a round patient, not a request).
        ("bavi.supervisor", 6, 2),
        # Xanh Pôn's: those its specialists took, and c7, unanswered after an offer to one of them.
        ("xanhpon.supervisor", 7, 3),
    ],
)
async def test_scope_of_each_supervisor(server: Instance, username: str, requests: int, pairs: int) -> None:
    status, body, _ = await fetch(server, username, "/api/stats", {**MARCH, "group_by": "pair"})
    assert status == 200, body
    assert body["totals"]["requests"] == requests
    assert len(body["groups"]) == pairs
    if username == "bavi.supervisor":
        assert body["scope"] == {"kind": "hospital", "id": "bavi-dgh", "name": "Bệnh viện Đa khoa huyện Ba Vì"}
        assert {g["key"] for g in body["groups"]} == {"bavi-dgh>", "bavi-dgh>xanhpon"}
        assert body["totals"] == expected(6, 4, 1, 1, 0, 4, (45.0, 102.0), 750.0, (4, 1, 0, 0), patients_reviewed=1)
    if username == "soyte.supervisor":
        assert body["scope"] == {"kind": "province", "id": "hanoi", "name": "Hà Nội"}
        assert not any("tienyen" in g["key"] or "qn-dkt" in g["key"] for g in body["groups"])
    if username == "quangninh.supervisor":
        assert body["scope"] == {"kind": "province", "id": "quangninh", "name": "Quảng Ninh"}
        assert [g["key"] for g in body["groups"]] == ["ttyt-tienyen>qn-dkt"]


@pytest.mark.parametrize("username", ["bavi.clinician", "xanhpon.surgeon"])
@pytest.mark.parametrize("path", ["/api/stats", "/api/stats/report"])
async def test_clinicians_and_specialists_are_refused(server: Instance, username: str, path: str) -> None:
    status, body, _ = await fetch(server, username, path)
    assert status == 403
    assert body["error"]["code"] == "forbidden"
    status, body, _ = await fetch(server, None, path)
    assert status == 401 and body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/stats", {"from": "yesterday"}),
        ("/api/stats", {"to": "2025-13-01"}),
        ("/api/stats", {"from": "2025-04-01", "to": "2025-03-01"}),
        ("/api/stats", {"from": "2025-03-01", "to": "2025-03-01"}),
        ("/api/stats", {"group_by": "doctor"}),
        ("/api/stats/report", {"month": "2025-13"}),
        ("/api/stats/report", {"month": "March"}),
        ("/api/stats/report", {"month": "2025-3"}),
    ],
)
async def test_bad_queries_are_invalid(server: Instance, path: str, params: dict[str, str]) -> None:
    status, body, _ = await fetch(server, "soyte.supervisor", path, params)
    assert status == 400
    assert body["error"]["code"] == "invalid" and body["error"]["message"]


async def test_default_period_is_the_last_30_days(server: Instance) -> None:
    status, body, _ = await fetch(server, "soyte.supervisor", "/api/stats")
    assert status == 200
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert end - start == timedelta(days=30)
    assert abs(end - datetime.now(UTC)) < timedelta(minutes=1)
    assert body["totals"]["requests"] == 0 and body["totals"]["wait_median_s"] is None


async def test_monthly_report_is_a_printable_vietnamese_page_with_inert_names(
    server: Instance, history_url: str
) -> None:
    status, html, headers = await fetch(server, "admin", "/api/stats/report", {"month": "2025-03"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = Text()
    page.feed(html)
    assert_printable(html, page, headers["Content-Security-Policy"])
    text = " ".join(page.parts)
    for expected_text in [
        "Báo cáo hoạt động hội chẩn từ xa",
        "Tháng 03/2025",
        "toàn mạng lưới",
        "Số yêu cầu hội chẩn",
        "Số ca tránh được chuyển tuyến",
        "Điều trị tại chỗ theo hướng dẫn",
        "Chuyển tuyến trên",
        "62,5%",  # 5 of 8 decisions (7 ended consults, 1 round patient) treated locally
        "52 giây",  # median wait, 52.5 s
        "2 phút 54 giây",  # p90 wait, 174 s
        "10 phút 00 giây",  # median duration, 600 s
        "Bệnh viện Đa khoa huyện Ba Vì → Bệnh viện Đa khoa Xanh Pôn",
        "Ngoại khoa",
        "Hồi sức cấp cứu",
        XSS_NAME + " → Bệnh viện Đa khoa Xanh Pôn",  # shown as text ...
    ]:
        assert expected_text in text, expected_text
    assert "b" not in page.tags  # ... never as markup
    assert "dữ liệu minh hoạ" not in text  # no demo consults in this month

    status, html, _ = await fetch(server, "bavi.supervisor", "/api/stats/report", {"month": "2025-03"})
    assert status == 200
    page = Text()
    page.feed(html)
    text = " ".join(page.parts)
    assert "Phạm vi: Bệnh viện Đa khoa huyện Ba Vì" in text
    assert "Tiên Yên" not in text and "Quảng Ninh" not in text and "alert" not in text

    db = Database(history_url)
    try:
        async with db.session() as session:
            audited = (await session.execute(select(AuditEntry.action, AuditEntry.target_id, AuditEntry.detail))).all()
    finally:
        await db.close()
    assert ("stats.report", "network", "month=2025-03") in audited
    assert ("stats.report", "bavi-dgh", "month=2025-03") in audited


async def test_stats_reads_are_audited(server: Instance, history_url: str) -> None:
    await fetch(server, "bavi.supervisor", "/api/stats", {**MARCH, "group_by": "pair"})
    db = Database(history_url)
    try:
        async with db.session() as session:
            entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "stats.read"))).one()
            supervisor = (await session.scalars(select(User).where(User.username == "bavi.supervisor"))).one()
    finally:
        await db.close()
    assert (entry.actor_id, entry.target_type, entry.target_id) == (supervisor.id, "stats", "bavi-dgh")
    assert entry.detail == "from=2025-02-28T17:00:00+00:00 to=2025-03-31T17:00:00+00:00 group_by=pair"


# Demo history.


@pytest.fixture(params=database_backends())
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database without any data, on each backend under test."""
    if request.param == "sqlite":
        url = normalize_database_url(f"sqlite:///{tmp_path / 'empty.db'}")
        drop = None
    else:
        url, drop = await fresh_postgres_database(os.environ["TEST_DATABASE_URL"])
    db = Database(url)
    await migrate.upgrade(db)
    await db.close()
    yield url
    if drop is not None:
        await drop()


async def test_first_seed_adds_a_closed_demo_history(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        await demo.seed(db, PASSWORD)
        today = datetime.now(VIETNAM).replace(hour=0, minute=0, second=0, microsecond=0)
        async with db.session() as session:
            rows = (await session.scalars(select(Consult))).all()
            users = (await session.scalars(select(User))).all()
            note_count = await session.scalar(select(func.count()).select_from(Note))
            event_count = await session.scalar(select(func.count()).select_from(ConsultEvent))
        assert 250 < len(rows) < 500
        assert all(c.demo for c in rows)
        assert {c.status for c in rows} == {"ended", "cancelled"}
        assert all(today - timedelta(days=92) < c.created_at and c.ended_at and c.ended_at < today for c in rows)
        assert all(c.patient["ref"].startswith("DEMO-") for c in rows)
        assert {c.patient["summary"] for c in rows} == {demo.DEMO_PATIENT_SUMMARY}
        assert {c.summary for c in rows} == {demo.DEMO_CONCLUSION, None}
        assert note_count == 0 and event_count and event_count > 3 * len(rows)
        for user in users:
            assert await consults.open_for(db, user.id) == []

        # The statistics read it as the definitions say.
        figures_rows, names = await stats.load(db, today - timedelta(days=92), today, NETWORK)
        report = stats.summarize(figures_rows, today - timedelta(days=92), today, "pair", names)
        totals = report["totals"]
        assert totals["requests"] == len(rows) and totals["waiting"] == 0
        assert totals["accepted"] == totals["ended"] == sum(1 for c in rows if c.status == "ended")
        assert totals["unanswered"] > 0 and totals["cancelled"] > 0
        assert totals["accepted"] + totals["unanswered"] + totals["cancelled"] == totals["requests"]
        assert 0.8 < totals["referrals_avoided"] / totals["ended"] < 0.97
        biggest = max(report["groups"], key=lambda g: g["requests"])
        assert biggest["key"] == "bavi-dgh>xanhpon"
        assert totals["wait_median_s"] < totals["wait_p90_s"]

        # Seeding again adds nothing.
        await demo.seed(db, PASSWORD)
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Consult)) == len(rows)
    finally:
        await db.close()


async def test_seeding_without_history_adds_no_consults(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        await demo.seed(db, PASSWORD, history=False)
        await demo.seed(db, PASSWORD)  # not the first seed any more: still nothing
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Consult)) == 0
    finally:
        await db.close()


def test_demo_history_is_deterministic() -> None:
    accounts = {u.username: (f"id-{u.username}", u.hospital_id) for u in demo.USERS}
    first = demo.history_rows(accounts, date(2025, 6, 1))
    assert first == demo.history_rows(accounts, date(2025, 6, 1))
    assert first != demo.history_rows(accounts, date(2025, 6, 1), seed=1)


# Pure functions.


@pytest.mark.parametrize(
    ("values", "p", "result"),
    [
        ([], 50, None),
        ([7.0], 50, 7.0),
        ([7.0], 90, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 90, 3.7),  # rank 2.7: 3 + 0.7 * (4 - 3); the order given does not matter
        ([10.0, 20.0, 30.0, 40.0, 50.0], 50, 30.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 90, 46.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 0, 10.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 100, 50.0),
        ([5.0, 5.0, 100.0], 50, 5.0),
    ],
)
def test_percentile(values: list[float], p: float, result: float | None) -> None:
    got = stats.percentile(values, p)
    if result is None:
        assert got is None
    else:
        assert got == pytest.approx(result)


def test_percentile_refuses_a_p_out_of_range() -> None:
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def row(**changes: Any) -> stats.Row:
    base: dict[str, Any] = {
        "id": "x",
        "kind": "consult",
        "status": "cancelled",
        "specialty": "surgery",
        "hospital_id": "bavi-dgh",
        "specialist_hospital_id": None,
        "created_at": vn(3, 1, 9),
        "started_at": None,
        "ended_at": None,
        "outcome": None,
        "expired": False,
    }
    return stats.Row(**{**base, **changes})


def test_each_request_has_one_fate() -> None:
    assert stats.fate(row(status="ended", started_at=vn(3, 1, 10), expired=True)) == "accepted"
    assert stats.fate(row(status="active", started_at=vn(3, 1, 10))) == "accepted"
    assert stats.fate(row(status="queued", expired=True)) == "waiting"
    assert stats.fate(row(status="offered")) == "waiting"
    assert stats.fate(row(status="cancelled", expired=True)) == "unanswered"
    assert stats.fate(row(status="cancelled")) == "cancelled"


def test_figures_of_nothing() -> None:
    assert stats.figures([]) == expected(0, 0)


def test_scope_and_month() -> None:
    upper = row(specialist_hospital_id="xanhpon")
    assert stats.in_scope(upper, None) and stats.in_scope(upper, frozenset({"xanhpon"}))
    assert stats.in_scope(upper, frozenset({"bavi-dgh"})) and stats.in_scope(upper, frozenset({"qn-dkt", "bavi-dgh"}))
    assert not stats.in_scope(upper, frozenset({"qn-dkt"})) and not stats.in_scope(upper, frozenset())
    assert stats.month_of(datetime(2025, 2, 28, 17, 0, tzinfo=UTC)) == "2025-03"
    assert stats.month_of(datetime(2025, 2, 28, 16, 59, tzinfo=UTC)) == "2025-02"


def test_reading_the_query() -> None:
    now = datetime(2025, 3, 15, tzinfo=UTC)
    assert stats.parse_moment("from", "2025-03-01") == datetime(2025, 2, 28, 17, tzinfo=UTC)
    assert stats.parse_moment("from", "2025-03-01T10:00") == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert stats.parse_moment("from", "2025-03-01T10:00+07:00") == datetime(2025, 3, 1, 3, tzinfo=UTC)
    assert stats.parse_period(None, None, now) == (now - timedelta(days=30), now)
    assert stats.parse_month("2025-12", now) == (
        "2025-12",
        datetime(2025, 11, 30, 17, tzinfo=UTC),
        datetime(2025, 12, 31, 17, tzinfo=UTC),
    )
    assert stats.parse_month(None, now)[0] == "2025-03"
    assert stats.wants_csv("text/csv")
    assert stats.wants_csv("text/csv, application/json")
    assert stats.wants_csv("application/json;q=0.5, text/csv")
    assert not stats.wants_csv("application/json, text/csv;q=0.5")
    assert not stats.wants_csv("*/*") and not stats.wants_csv("") and not stats.wants_csv("text/csv;q=0")


def test_csv_cells_never_start_a_formula() -> None:
    report = stats.summarize([row()], vn(3, 1, 0), vn(4, 1, 0), "hospital", {"bavi-dgh": "=HYPERLINK(1)"})
    rows = list(csv.reader(io.StringIO(stats.csv_text(report, "en").removeprefix("\ufeff"))))
    assert rows[1][:3] == ["bavi-dgh", "'=HYPERLINK(1)", "1"]
    rows = list(csv.reader(io.StringIO(stats.csv_text(report, "vi").removeprefix("\ufeff")), delimiter=";"))
    assert rows[1][:3] == ["bavi-dgh", "'=HYPERLINK(1)", "1"]


def test_csv_quotes_every_cell_and_neutralises_formulas_after_a_comma_or_semicolon() -> None:
    """Excel in Vietnamese splits a line on `;`, quotes or not: text after a `;` (or a `,`) inside
    a cell then starts a cell of its own, and must not start a formula there either."""
    names = {"bavi-dgh": 'Bệnh viện A;=HYPERLINK("x");+1, @SUM(1); "-2', "xanhpon": "Xanh Pôn; khoa Nội, tầng 2"}
    report = stats.summarize([row()], vn(3, 1, 0), vn(4, 1, 0), "hospital", names)
    for lang, delimiter, total in (("en", ",", "Total"), ("vi", ";", "Tổng cộng")):
        text = stats.csv_text(report, lang).removeprefix("\ufeff")
        for line in text.splitlines():
            # Every cell quoted, numbers and empty cells too: the line is "…","…",…
            assert line.startswith('"') and line.endswith('"'), line
            for piece in line.split(";")[1:]:  # as a `;` spreadsheet would cut it
                assert not piece.lstrip(' "').startswith(stats.FORMULA_STARTS), (piece, line)
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        labels = {r[0]: r[1] for r in rows[1:]}
        assert labels["bavi-dgh"] == "Bệnh viện A;'=HYPERLINK(\"x\");'+1,' @SUM(1);' \"-2", lang
        assert labels["total"] == total


async def test_the_csv_export_neutralises_a_hospital_named_like_a_formula(server: Instance) -> None:
    admin = await login(server.url, "admin")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}"}) as http:
        hostile = {"name": "=cmd|' /C calc'!A0; -2+3"}
        async with http.patch(f"{server.url}/api/admin/hospitals/bavi-dgh", json=hostile) as resp:
            assert resp.status == 200, await resp.text()
    status, text, _ = await fetch(
        server, "soyte.supervisor", "/api/stats", {**MARCH, "group_by": "hospital"}, accept="text/csv"
    )
    assert status == 200
    text = text.removeprefix("\ufeff")
    assert all(line.startswith('"') and line.endswith('"') for line in text.splitlines())
    labels = {r[0]: r[1] for r in csv.reader(io.StringIO(text), delimiter=";")}  # Vietnamese, by default
    assert labels["bavi-dgh"] == "'=cmd|' /C calc'!A0;' -2+3"
