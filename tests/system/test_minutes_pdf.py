"""The minutes as an archival PDF: read back with poppler's own tools (pdftotext, pdffonts, pdfinfo)."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
from playwright.async_api import Browser
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from server.actions.minutes_pdf import MinutesInfo, call_seconds, render
from server.records.models import Consult
from tests.conftest import Instance, add_user
from tests.system.browsing import signed_in
from tests.system.test_notes import add, note
from tests.system.test_record import http
from tests.system.test_rtc import active_consult, join

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PDFAID = "http://www.aiim.org/pdfa/ns/id/"

IDENTITY = {
    "name": "Nguyễn Thị Hoa",
    "birth_date": "1961-04-09",
    "national_id": "001161012345",
    "insurance_id": "HT2010112345678",
    "address": "Thôn Đồng Chằm, xã Tản Lĩnh, huyện Ba Vì, Hà Nội",
}


def poppler(tool: str, *args: str) -> str:
    return subprocess.run([tool, *args], check=True, capture_output=True, text=True, timeout=30).stdout


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
async def held_consult(instance: Instance, clients, database_url: str) -> dict[str, Any]:
    """A consult whose call had the clinician, the surgeon and a Ba Vì colleague who wrote nothing;
    notes (one amended), an attachment, ended with an outcome; the patient's identity recorded."""
    await add_user(database_url, "bavi.team", "clinician", "bavi-dgh")
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    colleague = await clients(instance, "bavi.team")
    for client in (clinician, surgeon, colleague):
        await join(client, cid)
    await add(clinician, note(cid, "Đau hố chậu phải 2 ngày, sốt 38,5 độ", section="history"))
    first = await add(surgeon, note(cid, "Viêm ruột thừa", section="assessment"))
    amended = await surgeon.call(
        "note:amend", {"consult_id": cid, "op_id": "a1", "note_id": first["id"], "text": "Viêm ruột thừa cấp"}
    )
    assert amended["ok"], amended
    assert (await colleague.call("consult:leave", {"consult_id": cid})) == {"ok": True}
    async with await http(instance, "bavi.clinician") as client:
        form = aiohttp.FormData()
        form.add_field("file", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, filename="phim-xquang.png")
        async with client.post(f"/api/consults/{cid}/attachments", data=form) as resp:
            assert resp.status == 201, await resp.text()
    ended = await surgeon.call(
        "consult:end", {"consult_id": cid, "outcome": "treated_locally", "summary": "Mổ nội soi tại chỗ, có hướng dẫn"}
    )
    assert ended["ok"], ended
    # The identity fields as the request form records them (issue #21): read when present.
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        patient = {**ended["consult"]["patient"], **IDENTITY}
        await conn.execute(update(Consult).where(Consult.id == cid).values(patient=patient))
    await engine.dispose()
    return ended["consult"]


async def download(instance: Instance, username: str, consult_id: str) -> tuple[int, bytes]:
    async with await http(instance, username) as client:
        async with client.get(f"/api/consults/{consult_id}/minutes.pdf") as resp:
            return resp.status, await resp.read()


async def test_the_minutes_pdf_is_an_a4_archival_vietnamese_document(
    instance: Instance, held_consult: dict[str, Any], tmp_path: Path
) -> None:
    status, body = await download(instance, "xanhpon.surgeon", held_consult["id"])
    assert status == 200 and body.startswith(b"%PDF-1.7")
    path = tmp_path / "bb.pdf"
    path.write_bytes(body)
    text = flat(poppler("pdftotext", "-enc", "UTF-8", str(path), "-"))
    year = held_consult["started_at"][:4]
    for expected in [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "BỆNH VIỆN ĐA KHOA HUYỆN BA VÌ",  # the issuing hospital: the requester's
        "Số: 1/BB-HCTX",
        f"Hà Nội, ngày {int(held_consult['started_at'][8:10]):02d}",  # place and date (UTC day may differ by one)
        f"năm {year}",
        "BIÊN BẢN HỘI CHẨN TỪ XA",
        "Hình thức: Hội chẩn từ xa",
        "Các điểm cầu: Bệnh viện Đa khoa huyện Ba Vì; Bệnh viện Đa khoa Xanh Pôn",
        "Bắt đầu:",
        "Kết thúc:",
        "Chủ trì: BS. ",  # the accepted specialist by default
        "Thư ký: BS. Nguyễn Văn Hùng",  # the requester by default
        "Họ và tên",
        "Chức danh",
        "Chuyên khoa",
        "Đơn vị",
        "Thời gian trong",
        "bavi.team",  # joined the call and wrote nothing: listed, with their time in it
        "Bác sĩ chuyên khoa tuyến trên",
        "phút",
        "Nguyễn Thị Hoa",
        "09/04/1961",
        "001161012345",
        "HT2010112345678",
        "Thôn Đồng Chằm, xã Tản Lĩnh",
        "IV. TÓM TẮT BỆNH ÁN",
        "Bệnh sử",
        "Đau hố chậu phải 2 ngày, sốt 38,5 độ",
        "Viêm ruột thừa cấp",
        "(đã sửa)",
        "Nội dung trước khi sửa",
        "phim-xquang.png",
        "Điều trị tại chỗ theo hướng dẫn",
        "Mổ nội soi tại chỗ, có hướng dẫn",
        "Tuyến dưới chưa báo lại kết quả.",
        "CHỦ TRÌ",
        "THƯ KÝ",
        "(Ký, ghi rõ họ tên)",
        "BS. Lê Minh Đức BS. Nguyễn Văn Hùng",  # under their blocks, side by side
    ]:
        assert expected in text, expected
    ref = held_consult["patient"]["ref"]
    pages = poppler("pdfinfo", str(path))
    count = int(re.search(r"Pages:\s+(\d+)", pages).group(1))  # type: ignore[union-attr]
    for page in range(1, count + 1):  # the number, the patient's reference and the page, on every page
        one = flat(poppler("pdftotext", "-f", str(page), "-l", str(page), "-enc", "UTF-8", str(path), "-"))
        assert f"Biên bản số 1/BB-HCTX · Mã người bệnh: {ref} · Trang {page}/{count}" in one
    assert re.search(r"Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", pages), pages
    assert re.search(r"PDF version:\s+1\.7", pages), pages
    metadata = poppler("pdfinfo", "-meta", str(path))
    assert "BIÊN BẢN HỘI CHẨN TỪ XA Số: 1/BB-HCTX" in metadata  # dc:title (PDF/A keeps it in XMP)
    assert pdfa_identification(metadata) == ("2", "B")
    assert b"/OutputIntents" in body and b"/GTS_PDFA1" in body  # the sRGB output intent
    fonts = poppler("pdffonts", str(path)).splitlines()[2:]
    assert fonts and all(re.search(r"\byes\s+yes\s+yes\s+\d+\s+\d+\s*$", line) for line in fonts), fonts
    assert all("DejaVuSans" in line for line in fonts)


def pdfa_identification(metadata: str) -> tuple[str | None, str | None]:
    """`pdfaid:part` and `pdfaid:conformance` from the XMP that `pdfinfo -meta` printed, written as
    elements or as attributes of an `rdf:Description` (both are the same RDF)."""
    xmp = ElementTree.fromstring(metadata[metadata.index("<x:xmpmeta") : metadata.rindex("</x:xmpmeta>") + 12])
    found: dict[str, str | None] = {"part": None, "conformance": None}
    for description in xmp.iter(f"{{{RDF}}}Description"):
        for name in found:
            key = f"{{{PDFAID}}}{name}"
            element = description.find(key)
            found[name] = description.attrib.get(key) or (element.text if element is not None else None) or found[name]
    return found["part"], found["conformance"]


async def test_the_number_is_kept_and_counts_per_hospital_and_year(
    instance: Instance, held_consult: dict[str, Any], clients
) -> None:
    first = await download(instance, "bavi.clinician", held_consult["id"])
    again = await download(instance, "xanhpon.surgeon", held_consult["id"])
    assert [_number(body) for _status, body in (first, again)] == [1, 1]
    _clinician, _surgeon, other = await active_consult(clients, instance, instance)
    status, body = await download(instance, "xanhpon.surgeon", other["id"])
    assert status == 200 and _number(body) == 2


def text_of(body: bytes) -> str:
    """pdftotext of a PDF given as bytes, white space collapsed."""
    result = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-", "-"], input=body, check=True, capture_output=True, timeout=30
    )
    return flat(result.stdout.decode())


def _number(body: bytes) -> int:
    return int(re.search(r"Số: (\d+)/BB-HCTX", text_of(body)).group(1))  # type: ignore[union-attr]


async def test_the_parties_name_the_chair_and_the_secretary(instance: Instance, held_consult: dict[str, Any]) -> None:
    cid = held_consult["id"]
    async with await http(instance, "bavi.clinician") as client:
        async with client.get(f"/api/consults/{cid}") as resp:
            people = {p["name"]: p["id"] for p in (await resp.json())["participants"]}
        body = {"chair_id": people["bavi.team"], "secretary_id": people["BS. Nguyễn Văn Hùng"]}
        async with client.patch(f"/api/consults/{cid}/minutes", json=body) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
            assert answer["chair_id"] == people["bavi.team"] and answer["number"] == 1
        async with client.patch(f"/api/consults/{cid}/minutes", json={"chair_id": "nobody"}) as resp:
            assert resp.status == 400
    async with await http(instance, "bavi.team") as client:  # a participant, not a party
        async with client.patch(f"/api/consults/{cid}/minutes", json={"chair_id": None}) as resp:
            assert resp.status == 403
    _status, pdf = await download(instance, "xanhpon.surgeon", cid)
    text = text_of(pdf)
    assert "Chủ trì: bavi.team" in text and "Thư ký: BS. Nguyễn Văn Hùng" in text


async def test_who_may_read_the_minutes_pdf(instance: Instance, held_consult: dict[str, Any]) -> None:
    """As the HTML minutes (tests/system/test_record.py): the parties, the requesting hospital's
    clinicians and the supervisors in scope; not a clinician elsewhere nor an admin."""
    for username, status in [("soyte.supervisor", 200), ("bavi.nurse", 403), ("xanhpon.icu", 403), ("admin", 403)]:
        assert (await download(instance, username, held_consult["id"]))[0] == status, username


def test_the_result_reported_back_is_in_the_minutes(tmp_path: Path) -> None:
    """The requesting side's report (`consult.result`) when the record carries one."""
    person = {"id": "u1", "name": "BS. Lê Văn An", "role": "clinician", "hospital": {"id": "h", "name": "BV huyện"}}
    record = {
        "consult": {
            "patient": {"ref": "BV-77", "summary": "Sốt cao"},
            "specialty": "icu",
            "urgency": "urgent",
            "requester": person,
            "specialist": None,
            "created_at": "2025-03-05T01:00:00+00:00",
            "started_at": None,
            "ended_at": None,
            "outcome": None,
            "summary": None,
            "result": {
                "result": "improving",
                "note": "Hết sốt sau 3 ngày",
                "reported_by": person,
                "reported_at": "2025-03-08T02:00:00+00:00",
            },
        },
        "hospital": {"id": "h", "name": "BV huyện", "level": "district"},
        "participants": [{**person, "part": "requester"}],
        "timeline": [],
        "notes": [],
        "attachments": [],
    }
    body = render(record, MinutesInfo(7, "Quảng Ninh", None, None, {}, {}))
    text = text_of(body)
    assert "VIII. KẾT QUẢ BÁO LẠI" in text and "Kết quả: Đỡ, đang theo dõi" in text
    assert "Hết sốt sau 3 ngày" in text and "Quảng Ninh, ngày 05 tháng 03 năm 2025" in text
    assert "Chưa ghi nhận thông tin định danh" in text and "không vào cuộc gọi" in text


def test_time_in_the_call_counts_from_joins_and_leaves() -> None:
    from datetime import datetime

    def line(at: str, kind: str, user: str) -> dict[str, Any]:
        return {"at": f"2025-03-05T{at}+00:00", "kind": kind, "actor": {"id": user}}

    timeline = [
        line("01:00:00", "joined", "a"),
        line("01:00:30", "joined", "b"),
        line("01:10:00", "left", "a"),
        line("01:20:00", "joined", "a"),
        line("01:25:00", "left", "a"),
        line("01:26:00", "accepted", "c"),
    ]
    seconds = call_seconds(timeline, datetime.fromisoformat("2025-03-05T01:30:30+00:00"))
    assert seconds == {"a": 900.0, "b": 1800.0}


async def test_the_record_page_downloads_the_minutes_pdf(
    instance: Instance, held_consult: dict[str, Any], browser: Browser
) -> None:
    """`Tải biên bản PDF` on the record page: fetched with the token, saved in place by the browser."""
    page = await signed_in(browser, instance, "bavi.clinician")
    await page.evaluate(f"location.hash = '#/record/{held_consult['id']}'")
    button = page.get_by_role("button", name="Tải biên bản PDF")
    async with page.expect_download() as downloading:
        await button.click()
    download = await downloading.value
    path = await download.path()
    assert path is not None and download.suggested_filename.endswith(".pdf")
    body = await asyncio.to_thread(Path(path).read_bytes)
    assert body.startswith(b"%PDF-") and "BIÊN BẢN HỘI CHẨN TỪ XA" in text_of(body)
    assert page.url.endswith(f"#/record/{held_consult['id']}")  # still in the app
    assert page.errors == []  # type: ignore[attr-defined]
    await page.context.close()
