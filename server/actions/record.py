"""The consult record as one document: the consult, participants, timeline, notes, attachments.

Also the printable minutes (biên bản hội chẩn từ xa); the FHIR R4 Bundle is `server.actions.fhir`.
Every text that came from a user is escaped in the HTML; nothing is ever interpreted.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from sqlalchemy import select

from server.actions import printable
from server.contract.views import (
    attachment_view,
    consent_recorder,
    consult_view,
    hospital_ref,
    iso,
    note_view,
    recording_view,
)
from server.policy.matching import SPECIALTIES
from server.records import consults, notes, recordings
from server.records import minutes_template as T
from server.records.consults import VIETNAM
from server.records.models import Attachment, Consult, Database, Hospital

OUTCOMES = {
    "treated_locally": "Điều trị tại chỗ theo hướng dẫn",
    "transfer": "Chuyển tuyến trên",
    "follow_up": "Hội chẩn lại / theo dõi",
    "onsite_support": "Đề nghị hỗ trợ tại chỗ",
}
URGENCY_NAMES = {"routine": "Thường quy", "urgent": "Khẩn", "emergency": "Cấp cứu"}


async def attachments_of(db: Database, consult_id: str) -> list[Attachment]:
    async with db.session() as session:
        result = await session.scalars(
            select(Attachment).where(Attachment.consult_id == consult_id).order_by(Attachment.created_at)
        )
        return list(result.all())


async def build(db: Database, consult: Consult) -> dict[str, Any]:
    """`{consult, hospital, participants, timeline, notes, attachments, recordings}`; notes are the
    latest versions, each with the versions it replaced under `history`; recordings, the call's
    segments in order."""
    events = await consults.timeline(db, consult.id)
    all_notes = await notes.after(db, consult.id)
    files = await attachments_of(db, consult.id)
    recorded = await recordings.of_call(db, consult_id=consult.id)
    found = (await consults.answers(db, [consult.id])).get(consult.id, [])
    ids: set[str | None] = {consult.requester_id, consult.specialist_id, consult.named_specialist_id}
    ids |= {consult.ended_by_id, consult.result_by_id, consent_recorder(consult)} | consults.answer_people(found)
    ids |= {e.actor_id for e in events} | {n.author_id for n in all_notes} | {f.uploader_id for f in files}
    ids |= {str(e.detail.get("user_id")) for e in events if e.kind == "invited"}
    who = await consults.people(db, ids)
    async with db.session() as session:
        hospital = await session.get(Hospital, consult.hospital_id)
    participants = []
    for user_id, role in [(consult.requester_id, "requester"), (consult.specialist_id, "specialist")]:
        if user_id and user_id in who:
            participants.append({**who[user_id], "part": role})
    seen = {p["id"] for p in participants}
    # Then whoever was invited, joined the call (even if they wrote nothing) or wrote a note.
    invited = [str(e.detail.get("user_id")) for e in events if e.kind == "invited"]
    joined = [e.actor_id for e in events if e.kind == "joined" and e.actor_id]
    for user_id in invited + joined + [n.author_id for n in all_notes]:
        if user_id in who and user_id not in seen:
            seen.add(user_id)
            participants.append({**who[user_id], "part": "invited" if who[user_id]["role"] == "specialist" else "team"})
    return {
        "consult": consult_view(consult, who, answers=found),
        "hospital": hospital_ref(hospital.id, hospital.name, hospital.level) if hospital else None,
        "participants": participants,
        "timeline": [
            {
                "at": iso(e.at),
                "kind": e.kind,
                "actor": who.get(e.actor_id) if e.actor_id else None,
                "detail": _shown(e.detail),
            }
            for e in events
        ],
        "notes": [
            {**note_view(latest, who), "history": [note_view(old, who) for old in history]}
            for latest, history in notes.current_versions(all_notes)
        ],
        "attachments": [attachment_view(f, who.get(f.uploader_id)) for f in files],
        "recordings": [recording_view(r) for r in recorded],
    }


def _vn(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(VIETNAM).strftime("%H:%M ngày %d/%m/%Y")


def birth_date(value: Any) -> str | None:
    """A birth date `YYYY-MM-DD` as `DD/MM/YYYY`; anything else as given."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).strftime("%d/%m/%Y")
    except ValueError:
        return str(value)


def identity_lines(patient: dict[str, Any]) -> list[tuple[str, str]]:
    """The patient's identity as both minutes (this page and the PDF) show it, `(label, value)` in
    the template's order, the fields not recorded left out; the hospital's reference always last."""
    L = T.LABELS
    values = [
        ("patient_name", patient.get("name")),
        ("birth_date", birth_date(patient.get("birth_date"))),
        ("sex", T.SEX.get(str(patient.get("sex") or ""), "")),
        ("age", str(patient["age"]) if patient.get("age") is not None else None),
        ("national_id", patient.get("national_id")),
        ("insurance_id", patient.get("insurance_id")),
        ("address", patient.get("address")),
    ]
    lines = [(L[key], str(value)) for key, value in values if value]
    return [*lines, (L["ref"], str(patient.get("ref") or L["empty"]))]


def _consenter(given: dict[str, Any]) -> str:
    who = T.CONSENT_GIVEN_BY.get(str(given.get("given_by")), str(given.get("given_by") or ""))
    return f"{who} ({given['relation']})" if given.get("relation") else who


def _recorder(given: dict[str, Any]) -> str:
    by = given.get("recorded_by")
    return f"{by['name'] if isinstance(by, dict) else T.LABELS['empty']}, {_vn(given.get('recorded_at'))}"


def consent_lines(c: dict[str, Any]) -> list[tuple[str, str]]:
    """The consent as it stands (`consult.consent`), `(label, value)`: who gave it, how, to what,
    its note, who recorded it and when; a withdrawal as such; none; and an emergency's reason
    for going ahead without it (kept once consent is taken afterwards)."""
    L = T.LABELS
    given = c.get("consent")
    lines: list[tuple[str, str]] = []
    if not given:
        lines.append((L["consent_state"], L["consent_none"]))
    elif given.get("scopes"):
        scopes = ", ".join(T.CONSENT_SCOPES.get(s, s) for s in given["scopes"])
        lines += [
            (L["consent_given_by"], _consenter(given)),
            (L["consent_method"], T.CONSENT_METHODS.get(given["method"], given["method"])),
            (L["consent_scopes"], scopes),
        ]
        if given.get("note"):
            lines.append((L["consent_note"], str(given["note"])))
        lines.append((L["consent_recorded"], _recorder(given)))
    else:
        lines += [
            (L["consent_state"], L["consent_withdrawn"]),
            (L["consent_given_by"], _consenter(given)),
            (L["consent_method"], T.CONSENT_METHODS.get(given["method"], given["method"])),
        ]
        if given.get("note"):
            lines.append((L["consent_note"], str(given["note"])))
        lines.append((L["consent_withdrawn_by"], _recorder(given)))
    if c.get("consent_waived_reason"):
        lines.append((L["consent_waived"], str(c["consent_waived_reason"])))
    return lines


def consent_history(timeline: list[dict[str, Any]]) -> list[str]:
    """Every consent given or withdrawn, oldest first, when there was more than one: a withdrawal
    or a change never hides what was consented to before."""
    changes = [line for line in timeline if line["kind"] in ("consent", "consent_withdrawn")]
    if len(changes) < 2:
        return []
    L = T.LABELS
    shown = []
    for line in changes:
        detail = line["detail"]
        if line["kind"] == "consent":
            scopes = ", ".join(T.CONSENT_SCOPES.get(s, s) for s in detail.get("scopes") or [])
            what = f"{_consenter(detail)}, {T.CONSENT_METHODS.get(detail.get('method'), '')}: {scopes}"
        else:
            what = L["consent_withdrawn"]
        who = line["actor"]["name"] if line.get("actor") else L["empty"]
        shown.append(L["consent_history_line"].format(when=_vn(line["at"]), what=what, who=who))
    return shown


def minutes_html(record: dict[str, Any]) -> str:
    """Biên bản hội chẩn từ xa: a printable page in Vietnamese."""
    c = record["consult"]
    patient = c["patient"]
    e = escape

    def person(p: dict[str, Any] | None) -> str:
        if not p:
            return "—"
        return f"{e(p['name'])} ({e(p['hospital']['name'])})"

    rows = "".join(
        f"<tr><td>{e(p['name'])}</td><td>{e(p['hospital']['name'])}</td><td>{e(_part_name(p['part']))}</td></tr>"
        for p in record["participants"]
    )
    sections = ""
    for code, name in notes.SECTION_NAMES.items():
        items = [n for n in record["notes"] if n["section"] == code]
        if not items:
            continue
        body = "".join(_note_html(n) for n in items)
        sections += f"<h2>{e(name)}</h2>{body}"
    # Identity and consent are patient data: the page is served only to those who may read the
    # record, and each read is audited (`consult.minutes`).
    identity = "".join(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in identity_lines(patient))
    consent = "".join(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in consent_lines(c))
    changes = consent_history(record["timeline"])
    history = ""
    if changes:
        listed = "".join(f"<li>{e(line)}</li>" for line in changes)
        history = f"<p>{e(T.LABELS['consent_history'])}:</p><ul>{listed}</ul>"
    outcome = OUTCOMES.get(c["outcome"] or "", "Chưa kết luận")
    hospital = record["hospital"]["name"] if record["hospital"] else ""
    title = f"Biên bản hội chẩn từ xa — {patient.get('ref', '')}"
    return printable.document(
        title,
        f"""<p>{e(hospital)}</p>
<h1>Biên bản hội chẩn từ xa</h1>
<table>
{identity}
<tr><th>Tóm tắt</th><td class="note">{e(str(patient.get("summary", "")))}</td></tr>
<tr><th>Chuyên khoa</th><td>{e(SPECIALTIES.get(c["specialty"], c["specialty"]))}</td></tr>
<tr><th>Mức độ</th><td>{e(URGENCY_NAMES.get(c["urgency"], c["urgency"]))}</td></tr>
<tr><th>Tuyến dưới đề nghị</th><td>{person(c["requester"])}</td></tr>
<tr><th>Chuyên gia tuyến trên</th><td>{person(c["specialist"])}</td></tr>
<tr><th>Yêu cầu lúc</th><td>{e(_vn(c["created_at"]))}</td></tr>
<tr><th>Bắt đầu</th><td>{e(_vn(c["started_at"]))}</td></tr>
<tr><th>Kết thúc</th><td>{e(_vn(c["ended_at"]))}</td></tr>
<tr><th>Người kết thúc</th><td>{person(c["ended_by"])}</td></tr>
</table>
<h2>{e(T.LABELS["consent"])}</h2>
<table>{consent}</table>
{history}
<h2>Thành phần tham gia</h2>
<table><tr><th>Họ tên</th><th>Đơn vị</th><th>Vai trò</th></tr>{rows}</table>
{sections}
<h2>Tài liệu đính kèm</h2>
{_attachments_html(record["attachments"])}
<h2>Ghi hình</h2>
{_recordings_html(record.get("recordings", []))}
<h2>Kết luận</h2>
<p><strong>{e(outcome)}</strong></p>
<p class="note">{e(c["summary"] or "")}</p>
<div class="sign"><div>Đại diện tuyến dưới<br><br><br>{person(c["requester"])}</div>
<div>Chuyên gia tuyến trên<br><br><br>{person(c["specialist"])}</div></div>""",
    )


def size_vi(size: int) -> str:
    """`850 B`, `12,5 KB`, `3,2 MB`: a file's size as a Vietnamese reader writes it."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB".replace(".", ",")
    return f"{size / (1024 * 1024):.1f} MB".replace(".", ",")


def _attachments_html(files: list[dict[str, Any]]) -> str:
    """The record's files: name, who added it, when, how large. Names only: the files stay in the record."""
    if not files:
        return "<p>Không có tài liệu đính kèm.</p>"
    e = escape
    rows = "".join(
        f"<tr><td>{e(f['filename'])}</td><td>{e(f['uploader']['name'] if f['uploader'] else '—')}</td>"
        f'<td>{e(_vn(f["created_at"]))}</td><td class="n">{e(size_vi(f["size"]))}</td></tr>'
        for f in files
    )
    return f"<table><tr><th>Tên tệp</th><th>Người gửi</th><th>Thời gian</th><th>Dung lượng</th></tr>{rows}</table>"


def _recordings_html(recorded: list[dict[str, Any]]) -> str:
    """The call's recordings (Thông tư 49/2017): each part, when, how long, its SHA-256 to check it by."""
    if not recorded:
        return "<p>Không ghi hình.</p>"
    e = escape
    state = {"recording": "đang ghi", "stopped": "", "failed": "bị gián đoạn"}
    rows = "".join(
        f"<tr><td>{r['segment']}{(' (' + state[r['state']] + ')') if state.get(r['state']) else ''}</td>"
        f'<td>{e(_vn(r["started_at"]))}</td><td class="n">{round(r["duration_s"] or 0)} giây</td>'
        f'<td class="n">{e(size_vi(r["bytes"] or 0))}</td><td><code>{e(r["sha256"] or "—")}</code></td></tr>'
        for r in recorded
    )
    return (
        "<table><tr><th>Phần</th><th>Bắt đầu</th><th>Thời lượng</th><th>Dung lượng</th><th>SHA-256</th></tr>"
        f"{rows}</table>"
    )


def _note_html(n: dict[str, Any]) -> str:
    """A note's current text, then each text it replaced (newest first): an amendment never hides what was written."""
    e = escape

    def signed(version: dict[str, Any]) -> str:
        return f"{e(version['author']['name'] if version['author'] else '')}, {e(_vn(version['created_at']))}"

    marks = (" (đã sửa)" if n["history"] else "") + (f" {T.LABELS['addendum']}" if n.get("addendum") else "")
    html = f'<p class="note">{e(n["text"])}<br><small>{signed(n)}{e(marks)}</small></p>'
    for old in n["history"]:
        html += (
            f'<p class="note replaced"><small>Nội dung trước khi sửa ({signed(old)}):</small><br>'
            f"<del>{e(old['text'])}</del></p>"
        )
    return html


def _part_name(part: str) -> str:
    return {
        "requester": "Bác sĩ đề nghị",
        "specialist": "Chuyên gia",
        "invited": "Được mời",
        "team": "Kíp tuyến dưới",
    }.get(part, part)


def _shown(detail: dict[str, Any]) -> dict[str, Any]:
    """An event's detail as the record shows it: without the `op_id` a write was kept under,
    which only says which of a device's sends it was."""
    return {k: v for k, v in detail.items() if k != "op_id"}
