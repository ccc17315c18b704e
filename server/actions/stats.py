"""Statistics over consults: requests, answers, waits, durations, outcomes, referrals avoided,
patients resolved at the district level.

Everything here is pure except `load`, which reads the consults created in a period (and, for
those never accepted, the offer lines of their timeline) and applies the caller's scope.

Definitions, over the consults *created* in `[start, end)`:

- `requests`: the consult requests among them (kind `consult`): a round patient's consult is
  reviewed on a schedule, not requested, and counts only in the round figures and `outcomes`
  below. Each request is in exactly one of the next four:
- `accepted`: a specialist accepted it (`started_at` is set; active or ended).
- `waiting`: still `queued` or `offered` when the figures are made.
- `unanswered`: closed without ever being accepted, after at least one offer lapsed (an
  `expired` line in its timeline, written by `dispatch.expire`).
- `cancelled`: closed without ever being accepted and without any lapsed offer.
- `ended`: accepted and ended (with an outcome).
- `wait_median_s`, `wait_p90_s`: `started_at - created_at` over accepted requests.
- `duration_median_s`: `ended_at - started_at` over ended requests.
- `outcomes`: the decisions given, per outcome code: ended requests and round patients with a
  decision alike (so their sum is `ended + patients_reviewed`); `referrals_avoided` =
  `treated_locally`.
- `resolved_at_district`: the ended requests (not round patients) whose patient was not
  transferred: neither the outcome `transfer` nor the result reported back (`consult:result`)
  `transferred`. `resolved_at_district_share` = `resolved_at_district / ended`, rounded to
  0.001 (`None` when nothing ended): the share the Quảng Ninh model reports (90 %).
- Ward rounds: each patient of a round session (one occurrence of a round that was held) has a
  consult of kind `round` (its outcome among `outcomes`).
  `rounds_held`: the distinct round sessions among these consults (a session counts in the
  period, scope and group of its patients' consults); `patients_reviewed`: the ended consults of
  kind `round`, i.e. round patients given a decision.

Percentiles are linear interpolation between closest ranks (Hyndman & Fan type 7, numpy's and
Excel PERCENTILE.INC's default): rank `p/100 * (n - 1)`, so the median of an even count is the
mean of the two middle values. Seconds are rounded to 0.1 s; `None` when there is no value.

Which hospitals a consult involves: the requesting hospital, and its specialist's hospital:
the accepted specialist's, else the named specialist's, else that of the first specialist it was
offered to (so an unanswered request counts for the hospital that let it lapse), else none.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select

from server.contract.errors import AppError
from server.contract.validation import FIRST_DAY, LAST_DAY, check_period, parse_instant
from server.contract.views import iso
from server.policy.matching import SPECIALTIES
from server.policy.scope import InView, Scope, sees
from server.records.consults import VIETNAM
from server.records.models import Consult, ConsultEvent, Database, Hospital, User

OUTCOME_CODES: tuple[str, ...] = ("treated_locally", "transfer", "follow_up", "onsite_support")
GROUP_BYS: tuple[str, ...] = ("pair", "specialty", "month", "hospital")
DEFAULT_DAYS = 30
NO_SPECIALIST_LABEL = "chưa có chuyên gia"

Fate = Literal["accepted", "waiting", "unanswered", "cancelled"]

# The CSV columns, in order; `outcomes` are spread into one column per code.
CSV_COLUMNS: tuple[str, ...] = (
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
    *OUTCOME_CODES,
    "referrals_avoided",
    "resolved_at_district",
    "resolved_at_district_share",
    "rounds_held",
    "patients_reviewed",
)


@dataclass(frozen=True)
class Row:
    """One consult as the statistics see it: no patient, no text."""

    id: str
    kind: str
    status: str
    specialty: str
    hospital_id: str  # the requesting hospital
    specialist_hospital_id: str | None  # see the module docstring
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    expired: bool  # at least one offer lapsed
    demo: bool = False
    round_session_id: str | None = None  # the round session of a round patient's consult
    result: str | None = None  # reported back after the end (`consult:result`)


def fate(row: Row) -> Fate:
    """Which of the four exclusive answers a request got."""
    if row.started_at is not None:
        return "accepted"
    if row.status in ("queued", "offered"):
        return "waiting"
    return "unanswered" if row.expired else "cancelled"


def percentile(values: Sequence[float], p: float) -> float | None:
    """The `p`-th percentile (0-100) by linear interpolation between closest ranks; None if empty."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError("p is between 0 and 100")
    ordered = sorted(values)
    rank = p / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def figures(rows: Iterable[Row]) -> dict[str, Any]:
    """The figures of the module docstring over these consults."""
    items = list(rows)
    asked = [r for r in items if r.kind != "round"]
    fates = [fate(r) for r in asked]
    waits = [(r.started_at - r.created_at).total_seconds() for r in asked if r.started_at is not None]
    decided = [r for r in items if r.status == "ended" and r.started_at is not None and r.ended_at is not None]
    ended = [r for r in decided if r.kind != "round"]
    resolved = [r for r in ended if r.outcome != "transfer" and r.result != "transferred"]
    durations = [(r.ended_at - r.started_at).total_seconds() for r in ended if r.ended_at and r.started_at]
    outcomes = {code: sum(1 for r in decided if r.outcome == code) for code in OUTCOME_CODES}
    return {
        "requests": len(asked),
        "accepted": fates.count("accepted"),
        "unanswered": fates.count("unanswered"),
        "cancelled": fates.count("cancelled"),
        "waiting": fates.count("waiting"),
        "ended": len(ended),
        "wait_median_s": _seconds(percentile(waits, 50)),
        "wait_p90_s": _seconds(percentile(waits, 90)),
        "duration_median_s": _seconds(percentile(durations, 50)),
        "outcomes": outcomes,
        "referrals_avoided": outcomes["treated_locally"],
        "resolved_at_district": len(resolved),
        "resolved_at_district_share": round(len(resolved) / len(ended), 3) if ended else None,
        "rounds_held": len({r.round_session_id for r in items if r.kind == "round" and r.round_session_id}),
        "patients_reviewed": sum(1 for r in decided if r.kind == "round"),
    }


def in_scope(row: Row, hospitals: InView) -> bool:
    """Whether the consult involves a hospital in view (`None`: the whole network): asked there,
    or answered (offered) from there."""
    return sees(hospitals, row.hospital_id, row.specialist_hospital_id)


def month_of(moment: datetime) -> str:
    """`YYYY-MM` in Vietnam time (Asia/Ho_Chi_Minh, UTC+7 all year)."""
    return moment.astimezone(VIETNAM).strftime("%Y-%m")


def group_key(row: Row, group_by: str, names: dict[str, str]) -> tuple[str, str]:
    """`(key, label)` of the group this consult falls in."""
    if group_by == "pair":
        upper = row.specialist_hospital_id
        label = f"{names.get(row.hospital_id, row.hospital_id)} → "
        label += names.get(upper, upper) if upper else NO_SPECIALIST_LABEL
        return f"{row.hospital_id}>{upper or ''}", label
    if group_by == "specialty":
        return row.specialty, SPECIALTIES.get(row.specialty, row.specialty)
    if group_by == "month":
        key = month_of(row.created_at)
        return key, f"{key[5:]}/{key[:4]}"
    if group_by == "hospital":
        return row.hospital_id, names.get(row.hospital_id, row.hospital_id)
    raise ValueError(f"unknown group_by {group_by!r}")


def summarize(
    rows: Iterable[Row], start: datetime, end: datetime, group_by: str | None, names: dict[str, str]
) -> dict[str, Any]:
    """`{from, to, group_by, totals, groups: [{key, label, ...figures}]}`; groups sorted by key."""
    items = list(rows)
    groups: dict[tuple[str, str], list[Row]] = {}
    if group_by is not None:
        for row in items:
            groups.setdefault(group_key(row, group_by, names), []).append(row)
    return {
        "from": iso(start),
        "to": iso(end),
        "group_by": group_by,
        "totals": figures(items),
        "groups": [
            {"key": key, "label": label, **figures(members)} for (key, label), members in sorted(groups.items())
        ],
    }


# Reading the query.


# The one parser of instants: a bare date is midnight in Vietnam there too. Kept under this name
# for the statistics' readers.
parse_moment = parse_instant


def parse_period(raw_from: str | None, raw_to: str | None, now: datetime) -> tuple[datetime, datetime]:
    """`[from, to)`, at most a year long; by default the last 30 days up to `now`."""
    end = parse_moment("to", raw_to) if raw_to else now
    start = parse_moment("from", raw_from) if raw_from else end - timedelta(days=DEFAULT_DAYS)
    check_period(start, end)
    return start, end


def parse_group_by(raw: str | None) -> str | None:
    if not raw:
        return None
    if raw not in GROUP_BYS:
        raise AppError("invalid", f"group_by must be one of {', '.join(GROUP_BYS)}")
    return raw


def parse_month(raw: str | None, now: datetime) -> tuple[str, datetime, datetime]:
    """`(YYYY-MM, start, end)` of a calendar month in Vietnam time; this month by default."""
    month = raw or month_of(now)
    try:
        if len(month) != 7 or month[4] != "-":
            raise ValueError(month)
        first = datetime(int(month[:4]), int(month[5:]), 1, tzinfo=VIETNAM)
        if not FIRST_DAY <= first.date() <= LAST_DAY:
            raise AppError("invalid", f"month must be between {FIRST_DAY:%Y-%m} and {LAST_DAY:%Y-%m}")
        following = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=VIETNAM)
        return month, first.astimezone(UTC), following.astimezone(UTC)
    except (ValueError, OverflowError):  # also 0001-01 and 9999-12: their bounds fall outside datetime's range
        raise AppError("invalid", "month must be YYYY-MM") from None


def wants_csv(accept: str) -> bool:
    """Whether an `Accept` header asks for `text/csv` at least as much as for JSON."""
    weights: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        weights[media] = max(weights.get(media, 0.0), q)
    csv_q = weights.get("text/csv", 0.0)
    return csv_q > 0 and csv_q >= weights.get("application/json", 0.0)


# CSV.


# What a spreadsheet runs as a formula when a cell starts with it (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The same after a `,` or `;` inside a cell (spaces and quotes between count for nothing): a
# spreadsheet whose locale splits on `;` (Excel in Vietnamese) cuts a comma-separated line there,
# quotes or not, and the piece after the cut starts a cell of its own.
_AFTER_SEPARATOR = re.compile(r'([,;])(?=[ "]*[=+\-@\t\r])')


def _cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula, at its start or after a `,` or `;`
    within it, gets an apostrophe there, which spreadsheets show as text."""
    if value is None:
        return ""
    text = str(value)
    if not isinstance(value, str):
        return text
    text = _AFTER_SEPARATOR.sub(r"\1'", text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


CSV_LANGS: tuple[str, ...] = ("vi", "en")
# The Vietnamese headers, for the spreadsheets of the Departments of Health; the English ones
# are the figures' codes (what integrators' scripts read).
CSV_HEADERS_VI: dict[str, str] = {
    "key": "Mã",
    "label": "Nhóm",
    "requests": "Số yêu cầu",
    "accepted": "Được tiếp nhận",
    "unanswered": "Không được trả lời",
    "cancelled": "Đã huỷ",
    "waiting": "Đang chờ",
    "ended": "Đã kết thúc",
    "wait_median_s": "Thời gian chờ trung vị (giây)",
    "wait_p90_s": "Thời gian chờ phân vị 90 (giây)",
    "duration_median_s": "Thời lượng hội chẩn trung vị (giây)",
    "treated_locally": "Điều trị tại chỗ",
    "transfer": "Chuyển tuyến trên",
    "follow_up": "Hội chẩn lại / theo dõi",
    "onsite_support": "Đề nghị hỗ trợ tại chỗ",
    "referrals_avoided": "Tránh chuyển tuyến",
    "resolved_at_district": "Giải quyết tại tuyến huyện",
    "resolved_at_district_share": "Tỷ lệ giải quyết tại tuyến huyện",
    "rounds_held": "Số buổi đi buồng",
    "patients_reviewed": "Số người bệnh được xem khi đi buồng",
}
TOTAL_LABELS = {"vi": "Tổng cộng", "en": "Total"}


def parse_csv_lang(raw: str | None) -> str:
    """`vi` (the default) or `en`."""
    if raw is None or raw == "":
        return "vi"
    if raw not in CSV_LANGS:
        raise AppError("invalid", "lang must be vi or en")
    return raw


def parse_format(raw: str | None) -> str | None:
    """`format=csv|json`, which outranks the `Accept` header; None when not given."""
    if raw is None or raw == "":
        return None
    if raw not in ("csv", "json"):
        raise AppError("invalid", "format must be csv or json")
    return raw


def _number(value: Any, lang: str) -> Any:
    """A figure as the spreadsheet of that language reads it: a decimal comma in Vietnamese."""
    if isinstance(value, float) and lang == "vi":
        return repr(value).replace(".", ",")
    return value


def csv_text(report: dict[str, Any], lang: str) -> str:
    """A header row, one row per group, then the total row (key `total`). UTF-8 with a BOM for
    spreadsheets. `vi`: Vietnamese headers, `;` between cells and decimal commas, as Excel set to
    Vietnamese reads a file it opens; `en`: the figures' codes as headers, `,` and decimal points."""
    out = io.StringIO()
    delimiter = ";" if lang == "vi" else ","
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_ALL)  # every cell quoted
    writer.writerow([CSV_HEADERS_VI[c] for c in CSV_COLUMNS] if lang == "vi" else CSV_COLUMNS)
    total = {"key": "total", "label": TOTAL_LABELS[lang], **report["totals"]}
    for line in [*report["groups"], total]:
        flat = {**line, **line["outcomes"]}
        writer.writerow([_cell(_number(flat.get(column), lang)) for column in CSV_COLUMNS])
    return "\ufeff" + out.getvalue()


# Loading.


async def load(db: Database, start: datetime, end: datetime, scope: Scope) -> tuple[list[Row], dict[str, str]]:
    """The consults created in `[start, end)` within `scope`, and every hospital's name by id."""
    period = (Consult.created_at >= start, Consult.created_at < end)
    async with db.session() as session:
        found = (await session.scalars(select(Hospital))).all()
        names = {h.id: h.name for h in found}
        in_view = scope.hospitals({h.id: h.province for h in found})
        hospital_of = {
            user_id: hospital_id for user_id, hospital_id in await session.execute(select(User.id, User.hospital_id))
        }
        consults = (
            await session.execute(
                select(
                    Consult.id,
                    Consult.kind,
                    Consult.status,
                    Consult.specialty,
                    Consult.hospital_id,
                    Consult.specialist_id,
                    Consult.named_specialist_id,
                    Consult.created_at,
                    Consult.started_at,
                    Consult.ended_at,
                    Consult.outcome,
                    Consult.demo,
                    Consult.round_session_id,
                    Consult.result,
                ).where(*period)
            )
        ).all()
        # Only requests never accepted need their timeline: whether an offer lapsed, and to whom it went.
        events = (
            await session.execute(
                select(ConsultEvent.consult_id, ConsultEvent.kind, ConsultEvent.detail)
                .join(Consult, Consult.id == ConsultEvent.consult_id)
                .where(*period, Consult.started_at.is_(None), ConsultEvent.kind.in_(("offered", "expired")))
                .order_by(ConsultEvent.id)
            )
        ).all()
    expired: set[str] = set()
    first_offered: dict[str, str] = {}
    for consult_id, kind, detail in events:
        if kind == "expired":
            expired.add(consult_id)
        elif consult_id not in first_offered and isinstance(detail, dict) and detail.get("to"):
            first_offered[consult_id] = str(detail["to"][0])
    rows: list[Row] = []
    for c in consults:
        upper = c.specialist_id or c.named_specialist_id or first_offered.get(c.id)
        row = Row(
            id=c.id,
            kind=c.kind,
            status=c.status,
            specialty=c.specialty,
            hospital_id=c.hospital_id,
            specialist_hospital_id=hospital_of.get(upper) if upper else None,
            created_at=c.created_at,
            started_at=c.started_at,
            ended_at=c.ended_at,
            outcome=c.outcome,
            expired=c.id in expired,
            demo=bool(c.demo),
            round_session_id=c.round_session_id,
            result=c.result,
        )
        if in_scope(row, in_view):
            rows.append(row)
    return rows, names
