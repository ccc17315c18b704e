"""Both minutes (the printable page and the PDF) show the patient's identity and consent, in the
same order: who the patient is, then who consented to what, how, recorded by whom and when, a
withdrawal before it, an emergency's reason for going ahead without it. Each read is audited,
none is logged, and someone who may not read the record sees neither."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from sqlalchemy import select

from server.records.models import AuditEntry
from tests.conftest import Instance
from tests.system.test_consent import BY_DAUGHTER, IDENTITY, captured  # noqa: F401 (a fixture)
from tests.system.test_consults import ask
from tests.system.test_minutes_pdf import text_of
from tests.system.test_record import http

CONSENTED = {**BY_DAUGHTER, "scopes": ["consult", "recording"], "note": "Con gái ký giấy đồng ý tại khoa"}
# What both minutes show, in this order (labels: server/records/minutes_template.py).
SHOWN = [
    "Họ và tên: Nguyễn Văn Hùng",
    "Ngày sinh: 14/03/1968",
    "Giới tính: Nam",
    "Số định danh cá nhân (CCCD): 001068004217",
    "Số thẻ BHYT: HT3010123456789",
    "Địa chỉ: Thôn Đông, xã Tản Lĩnh, huyện Ba Vì, Hà Nội",
    "Mã người bệnh tại bệnh viện: BV-2041",
    "Người đồng ý: Người nhà (con gái)",
    "Hình thức đồng ý: Bằng văn bản",
    "Đồng ý cho: hội chẩn từ xa, ghi hình buổi hội chẩn",
    "Ghi chú về đồng ý: Con gái ký giấy đồng ý tại khoa",
    "Người ghi nhận: BS. Nguyễn Văn Hùng, ",
    "Các lần ghi nhận:",
    "Người nhà (con gái), Bằng văn bản: hội chẩn từ xa — BS. Nguyễn Văn Hùng",
    "Đã rút lại đồng ý — BS. Nguyễn Văn Hùng",
    "Người nhà (con gái), Bằng văn bản: hội chẩn từ xa, ghi hình buổi hội chẩn — BS. Nguyễn Văn Hùng",
]


class Cells(HTMLParser):
    """The page's text with each table row as `label: value` (as the PDF writes its fields)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td":
            self.parts.append(":")
        elif tag in ("tr", "li", "p", "h2"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def text(self) -> str:
        return re.sub(r"\s+", " ", re.sub(r"\s*:\s*", ": ", "".join(self.parts)))


def in_order(text: str, expected: list[str]) -> None:
    at = 0
    for item in expected:
        found = text.find(item, at)
        assert found >= 0, f"{item!r} missing, or out of order, in: {text[at : at + 300]}"
        at = found + len(item)


async def minutes_of(instance: Instance, username: str, consult_id: str) -> tuple[int, str, str]:
    async with await http(instance, username) as client:
        async with client.get(f"/api/consults/{consult_id}/minutes") as resp:
            status, html = resp.status, await resp.text()
        async with client.get(f"/api/consults/{consult_id}/minutes.pdf") as resp:
            pdf = await resp.read() if resp.status == 200 else b""
    if status != 200:
        return status, html, ""
    parsed = Cells()
    parsed.feed(html)
    return status, parsed.text(), text_of(pdf)


async def test_both_minutes_show_identity_then_consent_with_its_history(
    instance: Instance,
    clients,
    captured,  # noqa: F811
) -> None:
    clinician = await clients(instance, "bavi.clinician")
    consult = await ask(clinician, patient=IDENTITY, consent=BY_DAUGHTER)
    cid = consult["id"]
    for op_id, given in (("rut", {**BY_DAUGHTER, "scopes": []}), ("lai", CONSENTED)):
        ack = await clinician.call("consult:consent", {"consult_id": cid, "op_id": op_id, **given})
        assert ack["ok"] is True, ack
    status, page, pdf = await minutes_of(instance, "bavi.clinician", cid)
    assert status == 200
    in_order(page, SHOWN)
    in_order(pdf, SHOWN)

    # Each read is audited; someone outside the record reads neither (and that is audited too).
    status, refused, _ = await minutes_of(instance, "xanhpon.icu", cid)
    assert status == 403 and IDENTITY["national_id"] not in refused
    async with instance.services.db.session() as session:
        reads = (
            await session.execute(
                select(AuditEntry.action).where(
                    AuditEntry.target_id == cid, AuditEntry.action.in_(("consult.minutes", "consult.minutes_pdf"))
                )
            )
        ).all()
    assert sorted(action for (action,) in reads) == ["consult.minutes", "consult.minutes_pdf"]
    logged = "\n".join(captured.lines)
    for field in ("name", "national_id", "insurance_id", "address"):
        assert IDENTITY[field] not in logged and json.dumps(IDENTITY[field])[1:-1] not in logged, field


async def test_an_emergency_without_consent_shows_why_and_a_withdrawal_shows_as_such(
    instance: Instance, clients
) -> None:
    clinician = await clients(instance, "bavi.clinician")
    reason = "Người bệnh hôn mê, chưa liên lạc được người nhà"
    emergency = await ask(clinician, urgency="emergency", patient=IDENTITY, consent=None, consent_waived_reason=reason)
    _, page, pdf = await minutes_of(instance, "bavi.clinician", emergency["id"])
    waived = [
        "Tình trạng đồng ý: Chưa ghi nhận đồng ý của người bệnh.",
        f"Cấp cứu, tiến hành khi chưa có đồng ý; lý do: {reason}",
    ]
    in_order(page, waived)
    in_order(pdf, waived)

    withdrawn = await ask(clinician, patient=IDENTITY, consent=BY_DAUGHTER)
    ack = await clinician.call(
        "consult:consent", {"consult_id": withdrawn["id"], "op_id": "rut", **BY_DAUGHTER, "scopes": []}
    )
    assert ack["ok"] is True, ack
    _, page, pdf = await minutes_of(instance, "bavi.clinician", withdrawn["id"])
    shown = [
        "Tình trạng đồng ý: Đã rút lại đồng ý",
        "Người đồng ý: Người nhà (con gái)",
        "Người ghi nhận việc rút: BS. Nguyễn Văn Hùng",
    ]
    in_order(page, shown)
    in_order(pdf, shown)
    assert "Đồng ý cho" not in page and "Đồng ý cho" not in pdf
