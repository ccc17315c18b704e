"""The printable monthly report, "Báo cáo hoạt động hội chẩn từ xa": statistics as a Vietnamese page.

Pure: it renders figures made by `server.actions.stats`. Every value is escaped; nothing is interpreted.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from server.actions import printable
from server.actions.record import OUTCOMES
from server.records.consults import VIETNAM


def duration_vi(seconds: float | None) -> str:
    """`45 giây`, `2 phút 05 giây`, `1 giờ 02 phút`; `—` when there is no value."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} giờ {minutes:02d} phút"
    if minutes:
        return f"{minutes} phút {secs:02d} giây"
    return f"{secs} giây"


def _percent(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.1f}".replace(".", ",") + "%" if whole else "—"


def _vn_time(value: datetime) -> str:
    return value.astimezone(VIETNAM).strftime("%H:%M ngày %d/%m/%Y")


def _group_table(title: str, first_column: str, groups: list[dict[str, Any]]) -> str:
    e = escape
    head = "".join(
        f"<th>{e(name)}</th>"
        for name in (
            first_column,
            "Yêu cầu",
            "Được tiếp nhận",
            "Không được trả lời",
            "Đã huỷ",
            "Thời gian chờ (trung vị)",
            "Tránh chuyển tuyến",
        )
    )
    if not groups:
        return f"<h2>{e(title)}</h2><p>Không có yêu cầu nào trong tháng.</p>"
    body = "".join(
        "<tr>"
        f"<td>{e(str(g['label']))}</td>"
        f'<td class="n">{e(str(g["requests"]))}</td>'
        f'<td class="n">{e(str(g["accepted"]))}</td>'
        f'<td class="n">{e(str(g["unanswered"]))}</td>'
        f'<td class="n">{e(str(g["cancelled"]))}</td>'
        f'<td class="n">{e(duration_vi(g["wait_median_s"]))}</td>'
        f'<td class="n">{e(str(g["referrals_avoided"]))}</td>'
        "</tr>"
        for g in groups
    )
    return f"<h2>{e(title)}</h2><table><tr>{head}</tr>{body}</table>"


def report_html(
    *,
    month: str,
    scope_name: str | None,
    start: datetime,
    end: datetime,
    by_pair: dict[str, Any],
    by_specialty: dict[str, Any],
    generated_at: datetime,
    includes_demo: bool,
) -> str:
    """The page for one month; `by_pair` and `by_specialty` are `stats.summarize` results for it."""
    e = escape
    t = by_pair["totals"]
    summary = [
        ("Số yêu cầu hội chẩn", str(t["requests"])),
        ("Được chuyên gia tiếp nhận", str(t["accepted"])),
        ("Không được trả lời (hết thời gian mời)", str(t["unanswered"])),
        ("Tuyến dưới huỷ trước khi được tiếp nhận", str(t["cancelled"])),
        ("Đang chờ", str(t["waiting"])),
        ("Đã kết thúc", str(t["ended"])),
        ("Thời gian chờ (trung vị)", duration_vi(t["wait_median_s"])),
        ("Thời gian chờ (phân vị 90)", duration_vi(t["wait_p90_s"])),
        ("Thời lượng hội chẩn (trung vị)", duration_vi(t["duration_median_s"])),
        ("Số buổi đi buồng từ xa", str(t["rounds_held"])),
        ("Số người bệnh được xem trong buổi đi buồng", str(t["patients_reviewed"])),
    ]
    decided = sum(t["outcomes"].values())  # consults' and round patients' decisions alike
    summary_rows = "".join(f'<tr><th>{e(name)}</th><td class="n">{e(value)}</td></tr>' for name, value in summary)
    outcome_rows = "".join(
        f'<tr><td>{e(OUTCOMES[code])}</td><td class="n">{e(str(count))}</td>'
        f'<td class="n">{e(_percent(count, decided))}</td></tr>'
        for code, count in t["outcomes"].items()
    )
    demo = (
        '<p class="demo">Số liệu có bao gồm dữ liệu minh hoạ (demo), không phải ca bệnh thật.</p>'
        if includes_demo
        else ""
    )
    return printable.document(
        f"Báo cáo hoạt động hội chẩn từ xa — tháng {month[5:]}/{month[:4]}",
        f"""<p>{e(scope_name or "Toàn mạng lưới hội chẩn từ xa")}</p>
<h1>Báo cáo hoạt động hội chẩn từ xa</h1>
<p class="sub">Tháng {e(month[5:])}/{e(month[:4])}</p>
<p>Kỳ báo cáo: từ {e(_vn_time(start))} đến {e(_vn_time(end))} (giờ Việt Nam).
Phạm vi: {e(scope_name or "toàn mạng lưới")}.</p>
{demo}
<h2>I. Tổng hợp</h2>
<table>{summary_rows}</table>
<h2>II. Kết quả hội chẩn</h2>
<table><tr><th>Kết luận</th><th>Số ca</th><th>Tỷ lệ</th></tr>{outcome_rows}</table>
<p class="key">Số ca tránh được chuyển tuyến: <strong>{e(str(t["referrals_avoided"]))}</strong></p>
{_group_table("III. Theo cặp bệnh viện (tuyến dưới → tuyến trên)", "Cặp bệnh viện", by_pair["groups"])}
{_group_table("IV. Theo chuyên khoa", "Chuyên khoa", by_specialty["groups"])}
<p>Lập lúc {e(_vn_time(generated_at))}.</p>
<div class="sign"><div>Người lập báo cáo<br><br><br></div><div>Lãnh đạo đơn vị<br><br><br></div></div>""",
    )
