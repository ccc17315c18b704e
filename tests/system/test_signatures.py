"""Digital signatures on the minutes (PAdES): a real test PKI (tests/system/pki.py), a real
RFC 3161 time-stamping service on loopback, pyHanko and poppler's pdfsig as the validators."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.actions import signatures
from server.policy.signing import MAX_WRONG_PINS
from server.records import chain
from server.records.models import AuditEntry, ChainHead, Database, MinutesSignature
from server.runtime.redis_process import free_port
from tests.conftest import Instance, StartInstance
from tests.system import pki as test_pki
from tests.system.pki import PIN, Pki
from tests.system.test_audit_chain import verify_audit
from tests.system.test_minutes_pdf import pdfa_identification, poppler
from tests.system.test_notes import add, note
from tests.system.test_record import http
from tests.system.test_rounds import join as join_round
from tests.system.test_rounds import new_round
from tests.system.test_rtc import active_consult

GUESS = "guess-Zq9-PIN"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    yield test_pki.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def tsa_url(pki: Pki) -> AsyncIterator[str]:
    async with test_pki.time_stamping(pki) as url:
        yield url


@pytest.fixture
async def signing_instance(start_instance: StartInstance, pki: Pki) -> Instance:
    return await start_instance(SIGNING_TRUST_ROOTS=str(pki.roots_pem))


class Http:
    """One signed-in HTTP session per user for a test (signing in costs a password hash)."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.sessions: dict[str, aiohttp.ClientSession] = {}

    async def of(self, username: str) -> aiohttp.ClientSession:
        if username not in self.sessions:
            self.sessions[username] = await http(self.instance, username)
        return self.sessions[username]

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()

    async def upload(self, user_id: str, p12: bytes, password: str = PIN) -> tuple[int, dict[str, Any]]:
        form = aiohttp.FormData()
        form.add_field("file", p12, filename="signing.p12", content_type="application/x-pkcs12")
        form.add_field("password", password)
        async with (await self.of("admin")).post(f"/api/admin/users/{user_id}/certificate", data=form) as resp:
            return resp.status, await resp.json()

    async def sign(self, username: str, consult_id: str, pin: str = PIN) -> tuple[int, dict[str, Any]]:
        async with (await self.of(username)).post(
            f"/api/consults/{consult_id}/minutes/sign", json={"pin": pin}
        ) as resp:
            return resp.status, await resp.json()

    async def get(self, username: str, path: str) -> tuple[int, bytes]:
        async with (await self.of(username)).get(path) as resp:
            return resp.status, await resp.read()

    async def signatures(self, username: str, consult_id: str, query: str = "") -> dict[str, Any]:
        status, raw = await self.get(username, f"/api/consults/{consult_id}/minutes/signatures{query}")
        assert status == 200, raw
        found: dict[str, Any] = json.loads(raw)
        return found


@pytest.fixture
async def web(signing_instance: Instance) -> AsyncIterator[Http]:
    client = Http(signing_instance)
    yield client
    await client.close()


async def ended(clients, instance: Instance) -> tuple[dict[str, Any], Any, Any]:
    """An ended consult between a clinician at Ba Vì and a specialist at Xanh Pôn, with a note."""
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    await add(surgeon, note(consult["id"], "Viêm ruột thừa cấp", section="assessment"))
    done = await surgeon.call(
        "consult:end", {"consult_id": consult["id"], "outcome": "treated_locally", "summary": "Mổ tại chỗ"}
    )
    assert done["ok"], done
    return done["consult"], clinician, surgeon


async def with_keys(web: Http, pki: Pki, consult: dict[str, Any]) -> None:
    for who, username in ((consult["specialist"], "xanhpon.surgeon"), (consult["requester"], "bavi.clinician")):
        status, body = await web.upload(who["id"], pki.files[username])
        assert status == 201, body


def text_of(pdf: bytes, folder: Path) -> str:
    path = folder / "m.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True, timeout=30)
    return re.sub(r"\s+", " ", out.stdout)


async def test_chair_then_secretary_sign_and_both_validate_with_pyhanko_and_pdfsig(
    start_instance: StartInstance, clients, pki: Pki, tsa_url: str, database_url: str, tmp_path: Path
) -> None:
    instance = await start_instance(SIGNING_TRUST_ROOTS=str(pki.roots_pem), TSA_URL=tsa_url)
    web = Http(instance)
    try:
        await _sign_lock_and_add(web, clients, pki, database_url, tmp_path)
    finally:
        await web.close()


async def _sign_lock_and_add(web: Http, clients, pki: Pki, database_url: str, tmp_path: Path) -> None:
    consult, clinician, _ = await ended(clients, web.instance)
    cid = consult["id"]
    await with_keys(web, pki, consult)

    status, body = await web.sign("xanhpon.surgeon", cid)
    assert status == 200, body
    assert [s["role"] for s in body["signatures"]] == ["chair"]
    status, body = await web.sign("bavi.clinician", cid)
    assert status == 200, body
    assert [(s["role"], s["signer"]["id"]) for s in body["signatures"]] == [
        ("chair", consult["specialist"]["id"]),
        ("secretary", consult["requester"]["id"]),
    ]

    found = await web.signatures("bavi.clinician", cid)
    assert found["valid"] is True and found["version"] == 1
    assert all(s["intact"] and s["trusted"] and s["timestamped"] for s in found["signatures"])
    signers = [s["signer"]["id"] for s in found["signatures"]]
    assert found["versions"] == [{"version": 1, "frozen": True, "locked": True, "signers": signers}]

    status, pdf = await web.get("xanhpon.surgeon", f"/api/consults/{cid}/minutes.pdf")
    assert status == 200 and pdf.startswith(b"%PDF")
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    verdict = test_pki.pdfsig(pki, path)
    assert verdict.count("Signature Validation: Signature is Valid.") == 2, verdict
    assert verdict.count("Certificate Validation: Certificate is Trusted.") == 2, verdict
    # Each shows in its block: the chair's and the secretary's empty fields are the ones filled.
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    assert {name for name, _, _ in fields.enumerate_sig_fields(reader, filled_status=True)} == {"Chair", "Secretary"}
    assert not list(fields.enumerate_sig_fields(reader, filled_status=False))
    # Still PDF/A-2b after two incremental updates, every font embedded (the stamps' too).
    metadata = poppler("pdfinfo", "-meta", str(path))
    assert pdfa_identification(metadata) == ("2", "B")
    fonts = poppler("pdffonts", str(path))
    assert all(re.search(r"\byes\s+yes\s+yes\s+\d+\s+\d+\s*$", line) for line in fonts.splitlines()[2:]), fonts
    # The minutes anchor the audit chain: its head when they were generated is printed in them.
    text = text_of(pdf, tmp_path)
    assert "Phiên bản 1" in text, text
    assert re.search(r"thời điểm lập: mục \d+ Mã băm \(SHA-256\) của mục: [0-9a-f]{64}", text), text[-600:]

    # Signing the same version again: refused.
    status, body = await web.sign("xanhpon.surgeon", cid)
    assert status == 409 and body["error"]["code"] == "conflict"

    # A note after the lock is an addendum, and makes version 2 to sign; version 1 stays as signed.
    written = await add(clinician, note(cid, "Bệnh nhân ổn định sau mổ", section="plan"))
    assert written["addendum"] is True
    now = await web.signatures("bavi.clinician", cid)
    assert now["version"] == 2 and now["signatures"] == [] and now["valid"] is False
    assert [v["version"] for v in now["versions"]] == [1, 2] and now["versions"][1]["frozen"] is False
    status, second = await web.get("bavi.clinician", f"/api/consults/{cid}/minutes.pdf")
    text = text_of(second, tmp_path)
    assert "Phiên bản 2" in text and "Bổ sung sau khi biên bản đã ký" in text and "Phiên bản 1:" in text, text
    status, page = await web.get("bavi.clinician", f"/api/consults/{cid}/minutes")
    assert status == 200 and "Bổ sung sau khi biên bản đã ký" in page.decode(), page[-600:]
    status, first = await web.get("bavi.clinician", f"/api/consults/{cid}/minutes.pdf?version=1")
    assert status == 200 and first == pdf
    assert (await web.signatures("bavi.clinician", cid, "?version=1"))["valid"] is True

    status, body = await web.sign("xanhpon.surgeon", cid)
    assert status == 200 and [s["role"] for s in body["signatures"]] == ["chair"], body
    # Every signature is chained: the audit chain vouches for them all; one changed in the
    # database (a member passed off as the chair) is named.
    db = Database(database_url)
    try:
        report = await chain.verify(db)
        assert report.intact, report.problem
        async with db.session() as session:
            first_id = await session.scalar(
                select(MinutesSignature.id).where(
                    MinutesSignature.consult_id == cid, MinutesSignature.version == 1, MinutesSignature.role == "chair"
                )
            )
        async with db.engine.begin() as connection:
            await connection.execute(
                update(MinutesSignature).where(MinutesSignature.id == first_id).values(role="member")
            )
        report = await chain.verify(db)
        assert report.problem and f"signature of the minutes {first_id} was altered" in report.problem, report
    finally:
        await db.close()


async def rewrite_chain(connection: AsyncConnection, seq: int, **changes: object) -> None:
    """What someone holding the database and this code could do: change entry `seq`, then compute
    every hash from it on, and the head's, again, so that the walk finds the chain whole."""
    table = AuditEntry.__table__
    prev = await connection.scalar(select(table.c.hash).where(table.c.seq == seq - 1)) or chain.GENESIS
    rows = (await connection.execute(select(table).where(table.c.seq >= seq).order_by(table.c.seq))).all()
    for row in rows:
        fields = {**row._mapping, **(changes if row.seq == seq else {})}
        fields["prev_hash"], fields["hash"] = prev, chain.entry_hash(prev, SimpleNamespace(**fields))
        await connection.execute(update(table).where(table.c.seq == row.seq).values(**fields))
        prev = fields["hash"]
    await connection.execute(update(ChainHead).values(hash=prev))


async def test_signed_minutes_anchor_the_chain_so_a_chain_rewritten_as_a_whole_is_found(
    signing_instance: Instance, web: Http, clients, pki: Pki, database_url: str, tmp_path: Path
) -> None:
    """The walk alone cannot tell a chain computed again from the start from the real one; the
    head that signed minutes printed, under their signatures, can."""
    consult, _, _ = await ended(clients, signing_instance)
    await with_keys(web, pki, consult)
    for username in ("xanhpon.surgeon", "bavi.clinician"):
        status, body = await web.sign(username, consult["id"])
        assert status == 200, body
    blobs = {"BLOB_DIR": str(signing_instance.services.settings.blob_dir)}
    code, said = verify_audit(database_url, tmp_path, **blobs)
    assert code == 0 and said.startswith("audit trail intact"), said
    status, pdf = await web.get("bavi.clinician", f"/api/consults/{consult['id']}/minutes.pdf")
    assert status == 200
    head = signatures.anchored_head(pdf)  # the head printed on the page, read back
    assert head is not None
    assert re.search(rf"mục {head[0]} Mã băm \(SHA-256\) của mục: {head[1]}", text_of(pdf, tmp_path))
    altered = bytearray(pdf)
    altered[2000] ^= 1  # a byte under the first signature
    assert signatures.anchored_head(bytes(altered)) is None

    # Where the first entry came from, changed (say, to hide who read a record from where), and
    # the chain computed again after it: the walk finds nothing wrong.
    db = Database(database_url)
    try:
        async with db.engine.begin() as connection:
            await rewrite_chain(connection, 1, address="203.0.113.9")
        assert (await chain.verify(db)).intact
    finally:
        await db.close()
    code, said = verify_audit(database_url, tmp_path, **blobs)
    assert code == 1, said
    assert f"the signed minutes of consult {consult['id']}, version 1 printed the audit chain's entry" in said, said
    assert said.endswith("the chain was rewritten"), said


def serial_of(p12: bytes) -> int:
    _, cert, _ = pkcs12.load_key_and_certificates(p12, PIN.encode())
    assert cert is not None
    return int(cert.serial_number)


async def test_the_ca_is_asked_a_revoked_certificate_signs_nothing_and_its_earlier_signature_is_not_trusted(
    web: Http, clients, pki: Pki, tmp_path: Path
) -> None:
    consult, _, _ = await ended(clients, web.instance)
    cid = consult["id"]
    await with_keys(web, pki, consult)
    try:
        async with test_pki.revocation_list(pki):
            # The chair's certificate is good: the CA's answer goes into the file (PAdES B-LT), so
            # the signature can be checked after the CA has stopped answering.
            status, body = await web.sign("xanhpon.surgeon", cid)
            assert status == 200 and body["signatures"][0]["trusted"] is True, body
            _, pdf = await web.get("xanhpon.surgeon", f"/api/consults/{cid}/minutes.pdf")
            assert b"/DSS" in pdf and b"/CRLs" in pdf, "no long-term validation data"
            # The secretary's certificate revoked by its CA: refused, nothing signed, audited.
            pki.root.revoked.add(serial_of(pki.files["bavi.clinician"]))
            status, body = await web.sign("bavi.clinician", cid)
            assert status == 409 and "revoked" in body["error"]["message"], body
            found = await web.signatures("bavi.clinician", cid)
            assert [s["role"] for s in found["signatures"]] == ["chair"]
            # The chair's certificate revoked afterwards: their signature is intact, no longer trusted.
            pki.root.revoked.add(serial_of(pki.files["xanhpon.surgeon"]))
            found = await web.signatures("bavi.clinician", cid)
            assert [(s["intact"], s["trusted"]) for s in found["signatures"]] == [(True, False)], found
            assert found["valid"] is False
        # The CA not answering at all (soft-fail): the signature is trusted as before.
        found = await web.signatures("bavi.clinician", cid)
        assert [(s["intact"], s["trusted"]) for s in found["signatures"]] == [(True, True)], found
    finally:
        pki.root.revoked.clear()
    db = web.instance.services.db
    async with db.session() as session:
        refused = await session.scalar(
            select(AuditEntry.detail).where(AuditEntry.action == "minutes.sign_refused", AuditEntry.target_id == cid)
        )
    assert refused == "revoked"


async def test_a_wrong_pin_signs_nothing_and_five_rest_the_key(
    web: Http, clients, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    consult, _, _ = await ended(clients, web.instance)
    cid = consult["id"]
    await with_keys(web, pki, consult)
    status, body = await web.sign("xanhpon.surgeon", cid, pin=GUESS)
    assert status == 403 and body["error"]["code"] == "forbidden", body
    assert GUESS not in caplog.text  # a PIN, even a wrong one, is never logged
    status, body = await web.sign("xanhpon.surgeon", cid, pin="0000")
    assert status == 403 and body["error"]["code"] == "forbidden", body
    assert (await web.signatures("xanhpon.surgeon", cid))["signatures"] == []
    for _ in range(MAX_WRONG_PINS - 2):
        status, body = await web.sign("xanhpon.surgeon", cid, pin="0000")
        assert status == 403
    # Five wrong in a row (counted in the database, so on every instance): even the right PIN waits.
    status, body = await web.sign("xanhpon.surgeon", cid)
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert (await web.signatures("xanhpon.surgeon", cid))["signatures"] == []


async def test_a_time_stamping_service_that_does_not_answer_signs_nothing(
    start_instance: StartInstance, clients, pki: Pki
) -> None:
    instance = await start_instance(TSA_URL=f"http://127.0.0.1:{free_port()}/tsa")  # nobody listens there
    web = Http(instance)
    try:
        consult, _, _ = await ended(clients, instance)
        await with_keys(web, pki, consult)
        status, body = await web.sign("xanhpon.surgeon", consult["id"])
        assert status == 503 and body["error"]["code"] == "unavailable", body
        assert (await web.signatures("xanhpon.surgeon", consult["id"]))["signatures"] == []
    finally:
        await web.close()


async def test_who_may_not_sign(web: Http, clients, pki: Pki) -> None:
    consult, _, _ = await ended(clients, web.instance)
    cid = consult["id"]
    # Without a certificate: conflict.
    status, body = await web.sign("xanhpon.surgeon", cid)
    assert status == 409 and "certificate" in body["error"]["message"], body
    # A clinician at another hospital: not theirs to sign.
    status, body = await web.sign("tienyen.clinician", cid)
    assert status == 403, body
    # A PIN too long is refused before anything is tried.
    status, body = await web.sign("xanhpon.surgeon", cid, pin="9" * 200)
    assert status == 400, body


async def test_an_upload_is_checked(web: Http, clients, pki: Pki) -> None:
    consult, _, _ = await ended(clients, web.instance)
    user_id = consult["specialist"]["id"]
    status, body = await web.upload(user_id, pki.files["xanhpon.surgeon"], password="wrong")
    assert status == 400, body
    status, body = await web.upload(user_id, b"x" * (70 * 1024))
    assert status == 413, body
    expired = pki.root.pkcs12("Old", "Bệnh viện Xanh Pôn", PIN, valid_days=2, starts_days=-5)
    status, body = await web.upload(user_id, expired)
    assert status == 400 and "not valid now" in body["error"]["message"], body
    status, body = await web.upload(user_id, pki.files["xanhpon.surgeon"])
    assert status == 201 and "Lê Minh Đức" in body["certificate"]["subject"], body


async def test_an_altered_byte_breaks_the_signature_and_another_ca_is_not_trusted(web: Http, clients, pki: Pki) -> None:
    consult, _, _ = await ended(clients, web.instance)
    cid = consult["id"]
    await with_keys(web, pki, consult)
    status, body = await web.sign("xanhpon.surgeon", cid)
    assert status == 200, body
    _, pdf = await web.get("xanhpon.surgeon", f"/api/consults/{cid}/minutes.pdf")
    roots = signatures.trust_roots(pki.roots_pem)
    checked = await asyncio.to_thread(signatures.check, pdf, roots)
    (field,) = checked
    assert checked[field] == signatures.Checked(intact=True, trusted=True, timestamped=False)
    # One byte of the page's content changed: the signature no longer covers what is there.
    at = pdf.index(b"stream", len(pdf) // 4) + 20
    altered = pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]
    broken = await asyncio.to_thread(signatures.check, altered, roots)
    assert broken.get(field, signatures.Checked(False, False, False)).intact is False
    # Intact, but from a CA these roots do not hold: not trusted.
    other = [asn1_x509.Certificate.load(pki.stranger.cert.public_bytes(Encoding.DER))]
    elsewhere = await asyncio.to_thread(signatures.check, pdf, other)
    assert elsewhere[field] == signatures.Checked(intact=True, trusted=False, timestamped=False)


async def test_two_signers_at_once_on_two_instances_both_land_in_one_pdf(
    start_instance: StartInstance, clients, pki: Pki, any_database_url: str
) -> None:
    """The compare-and-set on the version's latest PDF: never two updates from one base."""
    a = await start_instance(database=any_database_url, SIGNING_TRUST_ROOTS=str(pki.roots_pem))
    b = await start_instance(database=any_database_url, SIGNING_TRUST_ROOTS=str(pki.roots_pem))
    on_a, on_b = Http(a), Http(b)
    try:
        consult, _, _ = await ended(clients, a)
        cid = consult["id"]
        await with_keys(on_a, pki, consult)
        await on_a.of("xanhpon.surgeon")
        await on_b.of("bavi.clinician")
        first, second = await asyncio.gather(on_a.sign("xanhpon.surgeon", cid), on_b.sign("bavi.clinician", cid))
        assert first[0] == 200 and second[0] == 200, (first, second)
        found = await on_b.signatures("bavi.clinician", cid)
        assert found["valid"] is True, found
        assert sorted(s["role"] for s in found["signatures"]) == ["chair", "secretary"]
        assert found["versions"][0]["locked"] is True
    finally:
        await on_a.close()
        await on_b.close()


async def test_a_round_patients_minutes_are_signed_too(web: Http, clients, pki: Pki) -> None:
    created = await new_round(web.instance)
    lead = await clients(web.instance, "xanhpon.icu")
    clinician = await clients(web.instance, "bavi.clinician")
    patients = (await join_round(lead, created["id"]))["round"]["patients"]
    await join_round(clinician, created["id"])
    cid = patients[0]["consult_id"]
    await add(lead, note(cid, "Tiếp tục thở máy, giảm an thần", section="plan"))
    done = await lead.call("consult:end", {"consult_id": cid, "outcome": "treated_locally", "summary": "Theo dõi"})
    assert done["ok"], done
    consult = done["consult"]
    for who in (consult["specialist"], consult["requester"]):
        status, body = await web.upload(who["id"], pki.root.pkcs12(who["name"], "Test", PIN))
        assert status == 201, body
    for username in ("xanhpon.icu", "bavi.clinician"):
        status, body = await web.sign(username, cid)
        assert status == 200, body
    found = await web.signatures("bavi.clinician", cid)
    assert found["valid"] and found["versions"][0]["locked"], found
