"""The minutes as an archival PDF: A4, PDF/A-2b, DejaVu Sans embedded (Vietnamese renders anywhere).

The texts and the order of the parts are the template's (server/records/minutes_template.py);
this lays them out with fpdf2 (docs/architecture.md, "Libraries chosen"). The content is the
consult's record (server/actions/record.py `build`), the minutes' number and roles
(server/records/minutes.py) and each participant's time in the call, counted from the call's
`joined` / `left` lines of the timeline. Rendering is CPU work: it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.model import NS, ExpandedName, XmpStructure, XmpValue
from pyhanko.sign import fields
from sqlalchemy import select

from server.actions import record
from server.policy.matching import SPECIALTIES
from server.records import minutes, notes
from server.records import minutes_template as T
from server.records.consults import VIETNAM
from server.records.models import Consult, Database, Hospital, User, utcnow

FONTS = Path(__file__).parent / "fonts"
FONT = "DejaVu"
LINE = 5.0  # mm: the height of a line of body text
SMALL = 4.2
# The audit chain's head in the document's keywords, as the signatures cover it: read back by
# `python -m server verify-audit` (server/actions/signatures.py `anchors`). Not a template text.
ANCHOR = "telerounds-audit-chain seq={seq} sha256={hash}"
# The empty signature fields in the chair's and the secretary's blocks, by role.
SIGNATURE_FIELDS = {"chair": "Chair", "secretary": "Secretary"}
A4_HEIGHT_MM = 297.0
PDFA_2B = XmpStructure.of(
    (ExpandedName(ns=NS["pdfaid"], local_name="part"), XmpValue("2")),
    (ExpandedName(ns=NS["pdfaid"], local_name="conformance"), XmpValue("B")),
)
Box = tuple[int, int, int, int]
ANCHORED = re.compile(r"telerounds-audit-chain seq=(\d+) sha256=([0-9a-f]{64})")


@dataclass(frozen=True)
class Edition:
    """Which version of the minutes this is (server/actions/signatures.py): its number, the audit
    chain's head when it was generated (so a signed version anchors the chain), and one line for
    each version signed before it."""

    version: int
    chain_seq: int
    chain_hash: str
    earlier: tuple[str, ...] = ()


@dataclass(frozen=True)
class MinutesInfo:
    """What the minutes add to the record: their number, place, chair, secretary, time in call."""

    number: int
    place: str
    chair_id: str | None
    secretary_id: str | None
    in_call_s: dict[str, float]
    specialties: dict[str, list[str]]
    edition: Edition | None = None


def call_seconds(timeline: list[dict[str, Any]], until: datetime) -> dict[str, float]:
    """Seconds each user spent in the consult's call, from its `joined` / `left` lines. A join
    never followed by a leave counts until `until` (the end of the consult, or now)."""
    opened: dict[str, datetime] = {}
    total: dict[str, float] = {}
    for line in timeline:
        actor = line.get("actor")
        if line["kind"] not in ("joined", "left") or not actor:
            continue
        at = datetime.fromisoformat(line["at"])
        user_id = actor["id"]
        total.setdefault(user_id, 0.0)
        if line["kind"] == "joined":
            opened.setdefault(user_id, at)
        elif (start := opened.pop(user_id, None)) is not None:
            total[user_id] += max((at - start).total_seconds(), 0.0)
    for user_id, start in opened.items():
        total[user_id] += max((until - start).total_seconds(), 0.0)
    return total


async def document(db: Database, consult: Consult, edition: Edition | None = None) -> bytes:
    """The PDF of the consult's minutes now; numbers them at the first generation."""
    data = await record.build(db, consult)
    row = await minutes.ensure(db, consult)
    ids = {p["id"] for p in data["participants"]}
    async with db.session() as session:
        hospital = await session.get(Hospital, consult.hospital_id)
        found = await session.execute(select(User.id, User.specialties).where(User.id.in_(sorted(ids))))
        specialties = {user_id: list(items or []) for user_id, items in found}
    place = (hospital.province_name or hospital.name) if hospital else ""
    until = consult.ended_at or utcnow()
    info = MinutesInfo(
        row.number, place, row.chair_id, row.secretary_id, call_seconds(data["timeline"], until), specialties, edition
    )
    return await asyncio.to_thread(render, data, info)


def _when(value: str | None) -> str:
    if not value:
        return T.LABELS["empty"]
    return datetime.fromisoformat(value).astimezone(VIETNAM).strftime("%H:%M ngày %d/%m/%Y")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return T.LABELS["not_in_call"]
    minutes_in = round(seconds / 60)
    hours, mins = divmod(minutes_in, 60)
    return f"{hours} giờ {mins:02d} phút" if hours else f"{mins} phút"


class _Minutes(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, self.footer_text.replace("{page}", str(self.page_no())), align="C")


def render(data: dict[str, Any], info: MinutesInfo) -> bytes:
    """The minutes of `data` (a record from `record.build`) as PDF/A-2b bytes."""
    c = data["consult"]
    patient: dict[str, Any] = c.get("patient") or {}
    who: dict[str, dict[str, Any]] = {p["id"]: p for p in data["participants"]}
    chair = who.get(info.chair_id or "") or c.get("specialist")
    secretary = who.get(info.secretary_id or "") or c.get("requester")
    hospital = data["hospital"]["name"] if data["hospital"] else ""
    number = T.NUMBER_LINE.format(number=info.number, code=T.NUMBER_CODE)
    ref = str(patient.get("ref") or T.LABELS["empty"])

    pdf = _Minutes(orientation="P", unit="mm", format="A4", enforce_compliance="PDF/A-2B")
    pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_lang("vi")
    pdf.set_title(f"{T.TITLE} {number}")
    pdf.set_author(hospital)
    pdf.set_subject(f"{T.TITLE} — {ref}")
    pdf.set_creator("telerounds")
    if info.edition is not None:
        # The head again, in a form a program reads back (server/actions/signatures.py `anchors`).
        pdf.set_keywords(ANCHOR.format(seq=info.edition.chain_seq, hash=info.edition.chain_hash))
    pdf.set_creation_date(utcnow())
    pdf.footer_text = T.FOOTER.format(number=info.number, code=T.NUMBER_CODE, ref=ref, page="{page}", pages="{nb}")
    pdf.set_margins(18, 15, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    width = pdf.epw

    # The heading: the issuing hospital and the number on the left, the nation on the right.
    top = pdf.get_y()
    pdf.set_font(FONT, "B", 10)
    pdf.multi_cell(width * 0.42, LINE, hospital.upper(), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    pdf.multi_cell(width * 0.42, LINE, number, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()
    pdf.set_xy(pdf.l_margin + width * 0.42, top)
    pdf.set_font(FONT, "B", 10)
    pdf.multi_cell(width * 0.58, LINE, T.NATION, align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.multi_cell(width * 0.58, LINE, T.MOTTO, align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    day = datetime.fromisoformat(c["started_at"] or c["created_at"]).astimezone(VIETNAM)
    place_date = T.PLACE_DATE.format(place=info.place, day=day.day, month=day.month, year=day.year)
    pdf.multi_cell(width * 0.58, LINE, place_date, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)
    pdf.set_font(FONT, "B", 14)
    pdf.cell(0, 8, T.TITLE, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if info.edition is not None:
        pdf.set_font(FONT, "", 9)
        pdf.cell(0, 5, T.LABELS["version"].format(version=info.edition.version), align="C")
        pdf.ln(5)
    pdf.ln(3)

    def heading(text: str) -> None:
        pdf.ln(2)
        pdf.set_font(FONT, "B", 11)
        pdf.multi_cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def field(label: str, value: str) -> None:
        pdf.set_font(FONT, "B", 10)
        pdf.write(LINE, f"{label}: ")
        pdf.set_font(FONT, "", 10)
        pdf.write(LINE, value or T.LABELS["empty"])
        pdf.ln(LINE)

    def text(value: str, size: float = 10, style: str = "") -> None:
        pdf.set_font(FONT, style, size)
        pdf.multi_cell(0, LINE if size >= 10 else SMALL, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def person(p: dict[str, Any] | None) -> str:
        if not p:
            return T.LABELS["empty"]
        title = p.get("title") or T.TITLES.get(p.get("role", ""), "")
        return f"{p['name']} — {title}, {p['hospital']['name']}"

    L = T.LABELS
    for part, title in T.PARTS:
        if part == "time":
            heading(title)
            field(L["start"], _when(c["started_at"]))
            field(L["end"], _when(c["ended_at"]))
            field(L["form"], L["form_value"])
            points = list(dict.fromkeys(p["hospital"]["name"] for p in data["participants"]))
            field(L["points"], "; ".join(points))
            field(L["specialty"], SPECIALTIES.get(c["specialty"], c["specialty"]))
            field(L["urgency"], record.URGENCY_NAMES.get(c["urgency"], c["urgency"]))
        elif part == "members":
            heading(title)
            field(L["chair"], person(chair))
            field(L["secretary"], person(secretary))
            pdf.ln(1)
            pdf.set_font(FONT, "", 8.5)
            with pdf.table(col_widths=(30, 26, 28, 34, 22), line_height=SMALL) as table:
                table.row(L["members_table"].split("|"))
                for p in data["participants"]:
                    table.row(
                        [
                            p["name"],
                            p.get("title") or T.TITLES.get(p["role"], p["role"]),
                            ", ".join(SPECIALTIES.get(s, s) for s in info.specialties.get(p["id"], [])) or L["empty"],
                            p["hospital"]["name"],
                            _duration(info.in_call_s.get(p["id"])),
                        ]
                    )
        elif part == "patient":
            heading(title)
            if not patient.get("name"):
                text(L["no_identity"], 9)
            for label, value in record.identity_lines(patient):
                field(label, value)
            # Then the consent, in the order of the printable page (server/actions/record.py).
            text(L["consent"], 10, "B")
            for label, value in record.consent_lines(c):
                field(label, value)
            changes = record.consent_history(data["timeline"])
            if changes:
                text(f"{L['consent_history']}:", 9)
                for line in changes:
                    text(f"• {line}", 9)
        elif part == "summary":
            heading(title)
            text(str(patient.get("summary") or L["empty"]))
        elif part == "notes":
            heading(title)
            if not data["notes"]:
                text(L["no_notes"])
            for code, name in notes.SECTION_NAMES.items():
                items = [n for n in data["notes"] if n["section"] == code]
                if not items:
                    continue
                text(name, 10, "B")
                for n in items:
                    _note(pdf, n)
        elif part == "attachments":
            heading(title)
            if not data["attachments"]:
                text(L["no_attachments"])
            for f in data["attachments"]:
                line = L["attachment_line"].format(
                    name=f["filename"],
                    who=f["uploader"]["name"] if f["uploader"] else L["empty"],
                    when=_when(f["created_at"]),
                    size=record.size_vi(f["size"]),
                )
                text(f"• {line}")
        elif part == "conclusion":
            heading(title)
            field(L["outcome"], record.OUTCOMES.get(c["outcome"] or "", L["no_outcome"]))
            field(L["conclusions"], c["summary"] or L["empty"])
        elif part == "result":
            heading(title)
            result = c.get("result")
            if not result:
                text(L["no_result"])
            else:
                field(L["result"], T.RESULTS.get(result.get("result", ""), str(result.get("result", ""))))
                if result.get("note"):
                    field(L["result_note"], str(result["note"]))
                by = result.get("reported_by")
                by_name = by.get("name") if isinstance(by, dict) else who.get(str(by), {}).get("name")
                field(L["result_by"], f"{by_name or L['empty']}, {_when(result.get('reported_at'))}")

    if info.edition is not None:
        if info.edition.earlier:
            heading(L["earlier"])
            for line in info.edition.earlier:
                text(f"• {line}", 9)
        pdf.ln(2)
        text(L["chain"].format(seq=info.edition.chain_seq), 8)
        text(L["chain_hash"].format(hash=info.edition.chain_hash), 8)

    # The signature blocks: the chair and the secretary, side by side, kept on one page.
    if pdf.get_y() > pdf.page_break_trigger - 45:
        pdf.add_page()
    pdf.ln(8)
    top = pdf.get_y()
    boxes: dict[str, tuple[int, Box]] = {}
    for column, (name, label, p) in enumerate(
        ((SIGNATURE_FIELDS["chair"], L["chair"], chair), (SIGNATURE_FIELDS["secretary"], L["secretary"], secretary))
    ):
        x = pdf.l_margin + column * width / 2
        # The room between the hint and the name, in PDF points from the page's lower left.
        boxes[name] = (pdf.page_no() - 1, _points(x + 8, top + 12, x + width / 2 - 8, top + 34))
        pdf.set_xy(x, top)
        pdf.set_font(FONT, "B", 11)
        pdf.cell(width / 2, 6, label.upper(), align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_font(FONT, "", 9)
        pdf.cell(width / 2, 5, L["sign_hint"], align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_xy(x, top + 35)  # room for the signature
        pdf.set_font(FONT, "B", 10)
        pdf.cell(width / 2, 6, p["name"] if p else L["empty"], align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    return _with_signature_fields(bytes(pdf.output()), boxes)


def _points(x1: float, y1: float, x2: float, y2: float) -> Box:
    """A box given in mm from the top left of an A4 page, in points from its lower left."""
    pt = 72 / 25.4
    return (round(x1 * pt), round((A4_HEIGHT_MM - y2) * pt), round(x2 * pt), round((A4_HEIGHT_MM - y1) * pt))


def archival(body: bytes) -> IncrementalPdfFileWriter:
    """A writer of an incremental update of `body` that keeps it PDF/A-2b: pyHanko writes the XMP
    metadata again with each update, from what it knows of it, which leaves out the PDF/A
    identification (`pdfaid`) unless it is given back."""
    writer = IncrementalPdfFileWriter(io.BytesIO(body), strict=False)
    writer.document_meta.xmp_extra.append(PDFA_2B)
    return writer


def _with_signature_fields(body: bytes, boxes: dict[str, tuple[int, Box]]) -> bytes:
    """The chair's and the secretary's blocks made empty signature fields (an incremental update),
    so their digital signatures show there (server/actions/signatures.py) and any PDF reader
    offers to sign there."""
    writer = archival(body)
    for name, (page, box) in boxes.items():
        fields.append_signature_field(writer, fields.SigFieldSpec(name, on_page=page, box=box))
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def _note(pdf: FPDF, n: dict[str, Any]) -> None:
    """A note's current text, then each text it replaced, struck through: an amendment never hides what was written."""
    L = T.LABELS
    author = n["author"]["name"] if n["author"] else L["empty"]
    pdf.set_font(FONT, "", 10)
    pdf.multi_cell(0, LINE, n["text"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 8)
    signed = f"{author}, {_when(n['created_at'])}" + (f" {L['amended']}" if n["history"] else "")
    if n.get("addendum"):
        signed += f" {L['addendum']}"
    pdf.multi_cell(0, SMALL, signed, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for old in n["history"]:
        old_author = old["author"]["name"] if old["author"] else L["empty"]
        pdf.set_x(pdf.l_margin + 6)
        pdf.multi_cell(
            0,
            SMALL,
            L["replaced"].format(who=old_author, when=_when(old["created_at"])),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.set_x(pdf.l_margin + 6)
        pdf.set_font(FONT, "S", 9)
        pdf.multi_cell(0, SMALL, old["text"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(FONT, "", 8)
    pdf.ln(1.5)
