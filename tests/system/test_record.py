"""The consult record over HTTP: record, minutes, FHIR, attachments; who may read what."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from server.records.models import AuditEntry
from tests.conftest import Instance, add_user, token_of
from tests.fhir_schema import schema_errors
from tests.system.test_consults import ask
from tests.system.test_notes import XSS, add, note
from tests.system.test_rtc import active_consult

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\n%%EOF"


async def http(instance: Instance, username: str) -> aiohttp.ClientSession:
    token = await token_of(instance, username)
    return aiohttp.ClientSession(base_url=instance.url, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def ended_consult(instance: Instance, clients) -> dict[str, Any]:
    """A consult with notes (one amended), ended with an outcome."""
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    await add(clinician, note(cid, "Đau hố chậu phải 2 ngày, sốt 38.5", section="history"))
    first = await add(surgeon, note(cid, "Viêm ruột thừa", section="assessment"))
    await surgeon.call(
        "note:amend", {"consult_id": cid, "op_id": "a1", "note_id": first["id"], "text": "Viêm ruột thừa cấp"}
    )
    await add(surgeon, note(cid, "Mổ nội soi cắt ruột thừa tại tuyến huyện", section="plan"))
    await add(clinician, note(cid, XSS, section="discussion"))
    ended = await surgeon.call(
        "consult:end", {"consult_id": cid, "outcome": "treated_locally", "summary": "Mổ tại chỗ, có hướng dẫn"}
    )
    assert ended["ok"], ended
    return ended["consult"]


async def test_the_record_has_everything(instance: Instance, ended_consult: dict[str, Any]) -> None:
    async with await http(instance, "bavi.clinician") as client:
        async with client.get(f"/api/consults/{ended_consult['id']}") as resp:
            body = await resp.json()
            assert resp.status == 200, body
    assert body["consult"]["status"] == "ended" and body["consult"]["outcome"] == "treated_locally"
    assert body["hospital"]["id"] == "bavi-dgh"
    assert [p["part"] for p in body["participants"]] == ["requester", "specialist"]
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds == ["requested", "consent", "offered", "accepted", "ended"]
    texts = {n["section"]: n for n in body["notes"]}
    assert texts["assessment"]["text"] == "Viêm ruột thừa cấp"
    assert [h["text"] for h in texts["assessment"]["history"]] == ["Viêm ruột thừa"]
    assert texts["discussion"]["text"] == XSS  # stored and returned as text
    assert [n["section"] for n in body["notes"]] == ["history", "assessment", "plan", "discussion"]


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def scripts(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.attrs if tag == "script"]


PRINTABLE_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def assert_printable(html: str, parsed: Text, policy: str) -> None:
    """A printable page: styled by /static/print.css, its Print button wired by /static/print.js,
    nothing inline (the policy would block it), its content in one `<main>` the app can show."""
    assert policy == PRINTABLE_POLICY
    assert parsed.scripts() == [{"type": "module", "src": "/static/print.js"}]  # the only script
    links = [attrs for tag, attrs in parsed.attrs if tag == "link"]
    assert links == [{"rel": "stylesheet", "href": "/static/print.css"}]
    assert "style" not in parsed.tags and not any("style" in attrs for _, attrs in parsed.attrs)
    assert not any(name.startswith("on") for _, attrs in parsed.attrs for name in attrs)
    assert parsed.tags.count("main") == 1 and [a for t, a in parsed.attrs if t == "button"] == [
        {"type": "button", "data-print": None}
    ]


async def test_minutes_are_a_printable_vietnamese_page_with_inert_text(
    instance: Instance, ended_consult: dict[str, Any]
) -> None:
    async with await http(instance, "bavi.clinician") as client:
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename="phim <b>x-quang</b>.png", content_type="image/png")
        async with client.post(f"/api/consults/{ended_consult['id']}/attachments", data=form) as resp:
            assert resp.status == 201, await resp.text()
            added = (await resp.json())["attachment"]
            assert added["uploader"]["name"] == "BS. Nguyễn Văn Hùng"
    async with await http(instance, "xanhpon.surgeon") as client:
        async with client.get(f"/api/consults/{ended_consult['id']}/minutes") as resp:
            html = await resp.text()
            assert resp.status == 200 and resp.content_type == "text/html"
            policy = resp.headers["Content-Security-Policy"]
        async with client.get("/static/print.css") as resp:
            css = await resp.text()
            assert resp.status == 200 and "@page" in css and "A4" in css and "@media print" in css
        async with client.get("/static/print.js") as resp:
            assert resp.status == 200 and "addEventListener" in await resp.text()
    parsed = Text()
    parsed.feed(html)
    assert_printable(html, parsed, policy)
    text = " ".join(parsed.parts)
    for expected in [
        "Biên bản hội chẩn từ xa",
        "Bệnh viện Đa khoa huyện Ba Vì",
        "BV-0042",
        "Ngoại khoa",
        "BS. Nguyễn Văn Hùng",
        "BS. Lê Minh Đức",
        "Bệnh viện Đa khoa Xanh Pôn",
        "Viêm ruột thừa cấp",
        "Điều trị tại chỗ theo hướng dẫn",
        "Mổ tại chỗ, có hướng dẫn",
        XSS,  # shown as text ...
        "Tài liệu đính kèm",  # the files of the record: name, who sent it, when, how large
        added["filename"],
        f"{len(PNG)} B",
        "Người kết thúc",
    ]:
        assert expected in text, expected
    assert "img" not in parsed.tags and "b" not in parsed.tags  # ... never as markup


class Struck(HTMLParser):
    """The text inside `<del>`: what an amendment replaced."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.struck: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inside += tag == "del"

    def handle_endtag(self, tag: str) -> None:
        self.inside -= tag == "del"

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.struck.append(data)


async def test_the_minutes_and_fhir_show_the_amended_text_and_what_it_replaced(
    instance: Instance, ended_consult: dict[str, Any]
) -> None:
    async with await http(instance, "bavi.clinician") as client:
        async with client.get(f"/api/consults/{ended_consult['id']}/minutes") as resp:
            html = await resp.text()
        async with client.get(f"/api/consults/{ended_consult['id']}/fhir") as resp:
            body = await resp.json(content_type=None)
    parsed = Text()
    parsed.feed(html)
    text = " ".join(parsed.parts)
    assert "Viêm ruột thừa cấp" in text and "(đã sửa)" in text and "Nội dung trước khi sửa" in text
    struck = Struck()
    struck.feed(html)
    assert struck.struck == ["Viêm ruột thừa"]  # the replaced text, shown struck through, once
    assert text.index("Viêm ruột thừa cấp") < text.index("Nội dung trước khi sửa")  # the current one first
    bundle = Bundle.model_validate(body)
    assert schema_errors(body) == []
    messages = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "Communication"]
    amended = next(r for r in messages if r.payload[0].contentString == "Viêm ruột thừa cấp")
    (replaced,) = amended.note
    assert replaced.text == "Nội dung trước khi sửa: Viêm ruột thừa"
    assert replaced.authorReference.display == "BS. Lê Minh Đức" and replaced.time is not None
    others = [r for r in messages if r is not amended]
    assert all(not r.note for r in others)  # notes never amended carry no history
    assert all(r.payload[0].contentString != "Viêm ruột thừa" for r in others)  # nor is it a note of its own


async def test_fhir_bundle_is_valid_r4(instance: Instance, ended_consult: dict[str, Any]) -> None:
    async with await http(instance, "bavi.clinician") as client:
        async with client.get(f"/api/consults/{ended_consult['id']}/fhir") as resp:
            body = await resp.json(content_type=None)
            assert resp.status == 200 and resp.content_type == "application/fhir+json"
    bundle = Bundle.model_validate(body)
    assert schema_errors(body) == []
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds[:6] == ["ServiceRequest", "Encounter"] + ["Communication"] * 4
    request, encounter = bundle.entry[0].resource, bundle.entry[1].resource
    assert request.status == "completed" and request.priority == "routine"
    assert request.subject.reference == f"Patient/{ended_consult['id']}"
    assert request.performer[0].display == "BS. Lê Minh Đức"
    assert encounter.status == "finished" and encounter.class_fhir.code == "VR"
    assert encounter.hospitalization is None  # the conclusion is an Observation: a consult discharges no one
    (outcome,) = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "Observation"]
    assert outcome.valueCodeableConcept.text == "Điều trị tại chỗ theo hướng dẫn"
    patient = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Patient")
    assert [i.value for i in patient.identifier] == ["BV-0042"]
    payloads = [
        e.resource.payload[0].contentString for e in bundle.entry if e.resource.get_resource_type() == "Communication"
    ]
    assert "Viêm ruột thừa cấp" in payloads and XSS in payloads


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("bavi.clinician", 200),
        ("xanhpon.surgeon", 200),
        ("soyte.supervisor", 200),
        ("bavi.nurse", 403),
        ("xanhpon.icu", 403),
        ("admin", 403),
    ],
)
@pytest.mark.parametrize("path", ["", "/minutes", "/fhir"])
async def test_who_may_read_the_record(
    instance: Instance, ended_consult: dict[str, Any], username: str, status: int, path: str
) -> None:
    async with await http(instance, username) as client:
        async with client.get(f"/api/consults/{ended_consult['id']}{path}") as resp:
            assert resp.status == status


async def test_attachments_are_checked_stored_announced_and_served_safely(instance: Instance, clients) -> None:
    _clinician, surgeon, consult = await active_consult(clients, instance, instance)
    cid = consult["id"]
    async with await http(instance, "bavi.clinician") as client:
        for name, content, status in [
            ("xquang.png", PNG, 201),
            ("anh.jpg", JPEG, 201),
            ("ket-qua.pdf", PDF, 201),
            ("virus.png", b"MZ\x90\x00not an image", 400),  # the name says PNG, the content does not
            ("page.html", b"<html><script>alert(1)</script>", 400),
            ("huge.png", PNG + b"\x00" * (10 * 1024 * 1024), 413),
        ]:
            form = aiohttp.FormData()
            form.add_field("file", content, filename=name, content_type="image/png")
            async with client.post(f"/api/consults/{cid}/attachments", data=form) as resp:
                assert resp.status == status, (name, await resp.text())
        announced = await surgeon.next("attachment:added")
        assert announced["attachment"]["content_type"] == "image/png"
        async with client.get(f"/api/consults/{cid}") as resp:
            listed = (await resp.json())["attachments"]
        assert [(a["filename"], a["content_type"]) for a in listed] == [
            ("xquang.png", "image/png"),
            ("anh.jpg", "image/jpeg"),
            ("ket-qua.pdf", "application/pdf"),
        ]
        async with client.get(listed[0]["url"]) as resp:
            assert resp.status == 200 and await resp.read() == PNG
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Content-Disposition"].startswith("attachment;")
        # A Vietnamese name survives the download (RFC 8187), with an ASCII fallback for old clients.
        form = aiohttp.FormData(quote_fields=False)  # the name in UTF-8, as a browser sends it
        form.add_field("file", PNG, filename="Phim phổi Đông Anh.png", content_type="image/png")
        async with client.post(f"/api/consults/{cid}/attachments", data=form) as resp:
            assert resp.status == 201, await resp.text()
            url = (await resp.json())["attachment"]["url"]
        async with client.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Disposition"] == (
                'attachment; filename="Phim phoi Dong Anh.png"; '
                "filename*=UTF-8''Phim%20ph%E1%BB%95i%20%C4%90%C3%B4ng%20Anh.png"
            )
            assert (
                resp.content_disposition is not None and resp.content_disposition.filename == "Phim phổi Đông Anh.png"
            )
    async with await http(instance, "bavi.nurse") as outsider:
        async with outsider.get(listed[0]["url"]) as resp:
            assert resp.status == 403
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename="x.png")
        async with outsider.post(f"/api/consults/{cid}/attachments", data=form) as resp:
            assert resp.status == 403


def multipart(disposition: str) -> tuple[bytes, str]:
    """A one-file multipart body whose part carries `disposition` exactly as written."""
    boundary = "ranh-gioi-7f3a"
    body = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n".encode()
        + PNG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def test_an_uploaded_vietnamese_file_name_is_stored_and_served_as_written(instance: Instance, clients) -> None:
    _clinician, _surgeon, consult = await active_consult(clients, instance, instance)
    url = f"/api/consults/{consult['id']}/attachments"
    name = "Phim phổi ngực.png"
    async with await http(instance, "bavi.clinician") as client:
        # aiohttp's client percent-encodes the name (`ph%E1%BB%95i`).
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename=name, content_type="image/png")
        async with client.post(url, data=form) as resp:
            assert resp.status == 201, await resp.text()
            stored = (await resp.json())["attachment"]
        assert stored["filename"] == name
        async with client.get(stored["url"]) as resp:
            assert resp.status == 200 and resp.content_disposition is not None
            assert resp.content_disposition.filename == name
        for disposition, expected in [
            # RFC 7578/5987: `filename*` wins over the ASCII `filename`.
            (
                'form-data; name="file"; filename="x.png"; filename*=UTF-8\'\'Phim%20ph%E1%BB%95i%20ng%E1%BB%B1c.png',
                name,
            ),
            # Decomposed, as typed on some systems: stored composed, every mark kept.
            ("form-data; name=\"file\"; filename*=UTF-8''Phim%20pho%CC%82%CC%89i.png", "Phim phổi.png"),
            # Decoding never makes a path, and a name stays bounded.
            ('form-data; name="file"; filename="..%2F..%2Fetc%2Fpasswd.png"', "passwd.png"),
            (f'form-data; name="file"; filename="{"%E1%BB%B1" * 400}.png"', "ự" * 80 + ".png"),
            # Not UTF-8 once decoded: kept as sent, then cleaned like any name.
            ('form-data; name="file"; filename="50%FF.png"', "50_FF.png"),
        ]:
            body, content_type = multipart(disposition)
            async with client.post(url, data=body, headers={"Content-Type": content_type}) as resp:
                assert resp.status == 201, await resp.text()
                assert (await resp.json())["attachment"]["filename"] == expected, disposition


async def test_consult_list_shows_what_the_caller_may_see(instance: Instance, ended_consult: dict[str, Any]) -> None:
    for username, expected in [
        ("bavi.clinician", 1),
        ("xanhpon.surgeon", 1),
        ("soyte.supervisor", 1),
        ("xanhpon.icu", 0),
    ]:
        async with await http(instance, username) as client:
            async with client.get("/api/consults", params={"status": "ended"}) as resp:
                assert resp.status == 200
                assert len((await resp.json())["consults"]) == expected, username
    async with await http(instance, "bavi.clinician") as client:
        async with client.get("/api/consults", params={"from": "yesterday"}) as resp:
            assert resp.status == 400


async def test_a_supervisor_attached_to_a_hospital_reads_only_its_consults(
    instance: Instance, ended_consult: dict[str, Any], database_url: str
) -> None:
    # A supervisor at Xanh Pôn (whose specialist answered) and one at Quảng Ninh's provincial hospital.
    await add_user(database_url, "xanhpon.supervisor", "supervisor", "xanhpon")
    await add_user(database_url, "qn.supervisor", "supervisor", "qn-dkt")
    for username, status, listed in (("xanhpon.supervisor", 200, True), ("qn.supervisor", 403, False)):
        async with await http(instance, username) as client:
            async with client.get(f"/api/consults/{ended_consult['id']}") as resp:
                assert resp.status == status, username
            async with client.get("/api/consults") as resp:
                ids = [c["id"] for c in (await resp.json())["consults"]]
                assert (ended_consult["id"] in ids) is listed, username


async def audit_entries(instance: Instance, action: str) -> list[AuditEntry]:
    async with instance.services.db.session() as session:
        found = await session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.at))
        return list(found.all())


async def test_the_consult_list_is_audited_by_id_never_by_text(
    instance: Instance, ended_consult: dict[str, Any]
) -> None:
    cid = ended_consult["id"]
    async with await http(instance, "soyte.supervisor") as client:
        async with client.get("/api/consults", params={"status": "ended"}) as resp:
            listed = [c["id"] for c in (await resp.json())["consults"]]
            assert listed == [cid]
        async with client.get("/api/consults", params={"status": "cancelled"}) as resp:
            assert (await resp.json())["consults"] == []
    shown, empty = await audit_entries(instance, "consults.list")
    assert shown.target_type == "consult_list" and shown.address == "127.0.0.1"
    assert shown.detail == f"status=ended ids={cid}"
    assert empty.detail == "status=cancelled ids="  # an empty list is a read too
    assert shown.actor_id == empty.actor_id and shown.actor_id not in (None, "")
    for entry in (shown, empty):  # the patient and the notes stay out of the log
        assert all(words not in entry.detail for words in ("BV-0042", "Viêm ruột thừa", "Mổ tại chỗ"))
    # The audit viewer finds the list by the consult it showed; a part of an id finds nothing.
    async with await http(instance, "admin") as client:
        async with client.get("/api/admin/audit", params={"consult_id": cid, "limit": "200"}) as resp:
            actions = [e["action"] for e in (await resp.json())["entries"]]
        async with client.get("/api/admin/audit", params={"consult_id": cid[:8], "limit": "200"}) as resp:
            assert (await resp.json())["entries"] == []
    assert actions.count("consults.list") == 1  # the list that showed it, not the empty one


async def test_session_state_is_audited_with_the_consults_and_offers_it_showed(instance: Instance, clients) -> None:
    surgeon = await clients(instance, "xanhpon.surgeon")
    surgeon_id = (await surgeon.next("session:state"))["user"]["id"]
    clinician = await clients(instance, "bavi.clinician")
    consult = await ask(clinician)
    await surgeon.next("consult:offer")
    device = await clients(instance, "xanhpon.surgeon")  # a second device while the offer waits
    assert [o["consult"]["id"] for o in (await device.next("session:state"))["offers"]] == [consult["id"]]
    again = await clients(instance, "bavi.clinician")
    assert [c["id"] for c in (await again.next("session:state"))["consults"]] == [consult["id"]]
    entries = await audit_entries(instance, "session.state")  # each written before its state was sent
    for user, shown in (
        (surgeon_id, ["ids=", f"ids={consult['id']}"]),
        (consult["requester"]["id"], ["ids=", f"ids={consult['id']}"]),
    ):
        assert [e.detail for e in entries if e.actor_id == user] == shown  # once per connect
    assert {(e.target_type, e.address) for e in entries} == {("consult_list", "127.0.0.1")}


async def test_the_record_names_who_ended_it_and_who_sent_each_file(
    instance: Instance, ended_consult: dict[str, Any]
) -> None:
    assert ended_consult["ended_by"]["name"] == "BS. Lê Minh Đức"  # the specialist ended it
    async with await http(instance, "xanhpon.surgeon") as client:
        form = aiohttp.FormData()
        form.add_field("file", PDF, filename="ket-qua.pdf", content_type="application/pdf")
        async with client.post(f"/api/consults/{ended_consult['id']}/attachments", data=form) as resp:
            assert resp.status == 201
        async with client.get(f"/api/consults/{ended_consult['id']}") as resp:
            body = await resp.json()
    assert body["consult"]["ended_by"]["name"] == "BS. Lê Minh Đức"
    assert body["consult"]["outcome"] == "treated_locally" and body["consult"]["summary"] == "Mổ tại chỗ, có hướng dẫn"
    [attached] = body["attachments"]
    assert attached["uploader"]["name"] == "BS. Lê Minh Đức" and attached["size"] == len(PDF)
    assert attached["url"].endswith(attached["id"]) and attached["created_at"]
    # Every version of an amended note, each saying which it replaced.
    [assessment] = [n for n in body["notes"] if n["section"] == "assessment"]
    [replaced] = assessment["history"]
    assert assessment["amends"] == replaced["id"] and replaced["amends"] is None


async def test_the_history_list_filters_and_pages(instance: Instance, clients, ended_consult: dict[str, Any]) -> None:
    clinician = await clients(instance, "bavi.clinician")
    waiting = await ask(clinician, specialty="obstetrics")
    named = await ask(clinician, specialty="obstetrics", patient={"ref": "Ba-Vi-777", "summary": "Doạ sinh non"})
    assert (await clinician.call("consult:cancel", {"consult_id": named["id"]}))["ok"]
    async with await http(instance, "bavi.clinician") as client:

        async def listing(**params: str) -> dict[str, Any]:
            async with client.get("/api/consults", params=params) as resp:
                body = await resp.json()
                assert resp.status == 200, body
                return dict(body)

        history = await listing(status="ended,cancelled")
        assert [c["id"] for c in history["consults"]] == [named["id"], ended_consult["id"]]  # newest first
        assert history["next_before"] is None
        assert history["consults"][0]["ended_by"]["name"] == "BS. Nguyễn Văn Hùng"  # cancelled by the clinician
        assert [c["id"] for c in (await listing(specialty="obstetrics"))["consults"]] == [named["id"], waiting["id"]]
        assert [c["id"] for c in (await listing(ref="vi-77"))["consults"]] == [named["id"]]  # any case, a part
        assert (await listing(kind="round"))["consults"] == []
        assert len((await listing(kind="consult,round"))["consults"]) == 3

        seen, before = [], None
        while True:  # one at a time, each page after the last one shown
            page = await listing(limit="1", **({"before": before} if before else {}))
            seen += [c["id"] for c in page["consults"]]
            before = page["next_before"]
            if before is None:
                break
            assert before == seen[-1]
        assert (
            seen
            == [c["id"] for c in (await listing())["consults"]]
            == [named["id"], waiting["id"], ended_consult["id"]]
        )

        for bad in (
            {"status": "ended,nope"},
            {"kind": "visit"},
            {"limit": "0"},
            {"limit": "101"},
            {"limit": "ten"},
            {"ref": "x" * 65},
            {"specialty": "astrology"},
            {"before": "ghost"},
        ):
            async with client.get("/api/consults", params=bad) as resp:
                body = await resp.json()
                assert resp.status == 400 and body["error"]["code"] == "invalid", (bad, body)
                assert next(iter(bad)) in body["error"]["message"], (bad, body)
    # A specialist's cursor cannot be a consult of someone else's list.
    async with await http(instance, "xanhpon.obgyn") as client:
        async with client.get("/api/consults", params={"before": waiting["id"]}) as resp:
            assert resp.status == 400
