"""Digital signatures on the minutes (PAdES, with pyHanko): versions, signing, validation.

A version of the minutes is generated, then frozen at its first signature: its PDF is kept in
the blob store, with the notes it holds (`notes_upto`) and the audit chain's head at generation
printed in it (a signed version anchors the chain). Each signer then adds an incremental update
to the latest PDF of the version: PAdES baseline B-B, or B-T with an RFC 3161 timestamp when
`TSA_URL` is set. Signers on every instance are serialised by a compare-and-set on the version's
latest PDF (`sha256`): a signature made from a base someone else signed meanwhile is thrown away
and made again from the new base, so two incremental updates never start from the same PDF.

Once the chair and the secretary have both signed a version, it is locked
(server/policy/signing.py): a note written after that is an addendum, and the minutes holding it
are the next version, to be signed in turn; the earlier versions stay as signed.

The signing key is the user's PKCS#12 (server/records/signing_keys.py), opened with the PIN they
give for this one signature and forgotten with it. A remote signing service (the CSC API of a
licensed CA) would take the place of `_sign_pdf`: pyHanko's `Signer` is the seam (a subclass whose
`async_sign_raw` asks the service for the signature of the digest), the rest stays as it is.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem
from pyhanko import stamp
from pyhanko.pdf_utils import text
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.validation import SignatureCoverageLevel, async_validate_pdf_signature
from pyhanko.sign.validation.generic_cms import validate_sig_integrity
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.api import FetchLimits, OwnedFetcherBackend
from pyhanko_certvalidator.registry import SimpleCertificateStore
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from server.actions import minutes_pdf
from server.contract.errors import AppError
from server.contract.views import (
    MinutesVersionView,
    SignaturesView,
    SignatureView,
    iso,
    minutes_version_view,
    signature_view,
    signatures_view,
)
from server.policy import signing
from server.records import audit, chain, consults, minutes, minutes_template, signing_keys
from server.records.blobs import BlobDamaged, BlobMissing, BlobStore
from server.records.consults import VIETNAM
from server.records.models import (
    AuditEntry,
    ChainHead,
    Consult,
    Database,
    MinutesSignature,
    MinutesVersion,
    Note,
    new_id,
    utcnow,
)
from server.records.users import Account
from server.runtime.services import Services

log = logging.getLogger("telerounds.signatures")

MAX_PDF_BYTES = 50 * 1024 * 1024
STAMP_FONT_SIZE = 8
REVOCATION_TIMEOUT_S = 5  # each request to a CA's CRL or OCSP address
FETCH_LIMITS = FetchLimits(max_requests=10, max_cert_requests=5, max_aia_urls_per_object=2)
ATTEMPTS = 5  # signatures made again when another signer got there first
TSA_TIMEOUT_S = 10


@dataclass(frozen=True)
class Checked:
    """One embedded signature as validated now."""

    intact: bool
    trusted: bool
    timestamped: bool


# Reading the versions ------------------------------------------------------------------------


async def _versions(db: Database, consult_id: str) -> list[MinutesVersion]:
    async with db.session() as session:
        found = await session.scalars(
            select(MinutesVersion).where(MinutesVersion.consult_id == consult_id).order_by(MinutesVersion.version)
        )
        return list(found.all())


async def _signatures(db: Database, consult_id: str) -> list[MinutesSignature]:
    async with db.session() as session:
        found = await session.scalars(
            select(MinutesSignature)
            .where(MinutesSignature.consult_id == consult_id)
            .order_by(MinutesSignature.version, MinutesSignature.signed_at)
        )
        return list(found.all())


async def _last_note_seq(db: Database, consult_id: str) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.max(Note.seq)).where(Note.consult_id == consult_id)) or 0)


def _frozen(rows: list[MinutesVersion]) -> signing.Frozen | None:
    return signing.Frozen(rows[-1].version, rows[-1].notes_upto) if rows else None


@dataclass(frozen=True)
class State:
    versions: list[MinutesVersion]  # frozen ones, oldest first
    current: int
    frozen: bool  # the current version is frozen (one of `versions`)


async def state(db: Database, consult_id: str) -> State:
    rows = await _versions(db, consult_id)
    current, frozen = signing.current_version(_frozen(rows), await _last_note_seq(db, consult_id))
    return State(rows, current, frozen)


async def _earlier(db: Database, consult_id: str, before: int) -> tuple[str, ...]:
    """A line for each version signed before `before`: who signed it, and its PDF's SHA-256."""
    signed = [s for s in await _signatures(db, consult_id) if s.version < before]
    who = await consults.people(db, [s.signer_id for s in signed])
    rows = {r.version: r for r in await _versions(db, consult_id)}
    lines = []
    for version in sorted({s.version for s in signed}):
        names = ", ".join(
            f"{who[s.signer_id]['name'] if s.signer_id in who else s.signer_id}"
            f" ({minutes_template.SIGNER_ROLES.get(s.role, s.role)})"
            for s in signed
            if s.version == version
        )
        lines.append(
            minutes_template.LABELS["earlier_line"].format(version=version, signers=names, sha256=rows[version].sha256)
        )
    return tuple(lines)


async def _render(db: Database, consult: Consult, version: int) -> bytes:
    """The minutes now, as `version`: with the audit chain's head now and the earlier versions."""
    chain_seq, chain_hash = await _head(db)
    edition = minutes_pdf.Edition(version, chain_seq, chain_hash, await _earlier(db, consult.id, version))
    return await minutes_pdf.document(db, consult, edition)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read(services: Services, sha256: str) -> bytes:
    blob = await services.blobs.open(sha256)
    return await blob.read()


async def pdf(services: Services, consult: Consult, version: int | None) -> tuple[bytes, int]:
    """The PDF of `version` (the current one by default) as signed so far; an unsigned current
    version is generated now."""
    now = await state(services.db, consult.id)
    wanted = now.current if version is None else version
    if not 1 <= wanted <= now.current:
        raise AppError("not_found", f"these minutes have versions 1 to {now.current}")
    if wanted == now.current and not now.frozen:
        return await _render(services.db, consult, wanted), wanted
    row = next((r for r in now.versions if r.version == wanted), None)
    if row is None:
        raise AppError("not_found", f"version {wanted} of these minutes was never signed")
    return await _read(services, row.sha256), wanted


# Signing -------------------------------------------------------------------------------------


def _asn1(cert: Any) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def _context(roots: list[asn1_x509.Certificate]) -> ValidationContext:
    """Trust `roots`, and ask each certificate's CA whether it was revoked, at the CRL or OCSP
    address the certificate names (a few requests at most, `REVOCATION_TIMEOUT_S` each). A CA that
    does not answer does not fail the check (soft-fail: a district's link to the CA may be down);
    a certificate the CA says is revoked does. The caller closes it (`aclose`) in the loop that
    used it."""
    backend = AIOHttpFetcherBackend(per_request_timeout=REVOCATION_TIMEOUT_S, limits=FETCH_LIMITS)
    return ValidationContext(
        trust_roots=roots,
        allow_fetching=True,
        revocation_mode="soft-fail",
        fetcher_backend=OwnedFetcherBackend(backend),
    )


def _standing(opened: signing_keys.Opened, roots: list[asn1_x509.Certificate]) -> str:
    """`trusted`, `revoked` (its CA says so) or `untrusted` (no path to `roots`, or no roots):
    the signer's certificate now. The network (the CA): runs in a worker thread."""

    async def ask() -> str:
        context = _context(roots)
        validator = CertificateValidator(
            _asn1(opened.certificate), [_asn1(c) for c in opened.chain], validation_context=context
        )
        try:
            await validator.async_validate_usage({"digital_signature"})  # type: ignore[no-untyped-call]
        except RevokedError:
            return "revoked"
        except Exception:
            return "untrusted"
        finally:
            await context.aclose()  # type: ignore[no-untyped-call]
        return "trusted"

    return asyncio.run(ask()) if roots else "untrusted"


@functools.cache
def _stamp_font() -> bytes:
    """DejaVu Sans at 1000 units per em. pyHanko 0.38 writes an embedded font's glyph widths in
    the font's own units where PDF reads thousandths of an em: DejaVu's 2048 spread the letters
    twice as wide in every reader. Scaled once per process (about a second, in the signing
    thread)."""
    font = TTFont(minutes_pdf.FONTS / "DejaVuSans.ttf")
    del font["FFTM"]  # FontForge's timestamps: fontTools cannot subset them, and says so each time
    scale_upem(font, 1000)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class _StampFont(GlyphAccumulatorFactory):
    """pyHanko's font engine factory, reading `_stamp_font` instead of a file."""

    def create_font_engine(self, writer: Any, obj_stream: Any = None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(
            writer=writer, font_handle=io.BytesIO(_stamp_font()), font_size=self.font_size, obj_stream=obj_stream
        )


def _stamp() -> stamp.TextStampStyle:
    """How a signature in the chair's or the secretary's block looks: the template's words in
    the minutes' font (DejaVu Sans, embedded as PDF/A asks), no frame."""
    # The same size for the font and the box: pyHanko lays the glyphs out at the first, the lines
    # at the second (pyHanko #733).
    font = _StampFont("DejaVuSans", font_size=STAMP_FONT_SIZE)
    return stamp.TextStampStyle(
        stamp_text=minutes_template.SIGNED_STAMP,
        text_box_style=text.TextBoxStyle(font=font, font_size=STAMP_FONT_SIZE, leading=STAMP_FONT_SIZE + 2),
        border_width=0,
        background=None,
    )


def _sign_pdf(
    base: bytes, opened: signing_keys.Opened, field: str, tsa_url: str, roots: list[asn1_x509.Certificate]
) -> bytes:
    """One PAdES signature added to `base` as an incremental update. With `roots` (the signer's
    certificate found trusted), the certificates and the CA's revocation answers go into the file
    too (PAdES B-LT, or B-B/B-T's long-term form), so the signature can be validated after the CA
    has stopped answering. CPU, the TSA and the CA: runs in a worker thread."""
    signer = signers.SimpleSigner(
        signing_cert=_asn1(opened.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(opened.key_der),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(c) for c in opened.chain]),  # type: ignore[no-untyped-call]
    )

    async def sign() -> bytes:
        context = _context(roots) if roots else None
        meta = signers.PdfSignatureMetadata(
            field_name=field,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
            embed_validation_info=context is not None,
            validation_context=context,
        )
        stamper = timestamps.HTTPTimeStamper(tsa_url, timeout=TSA_TIMEOUT_S) if tsa_url else None
        out = io.BytesIO()
        writer = minutes_pdf.archival(base)
        # In an empty field of the document (the chair's or the secretary's block) it shows who
        # signed and when; in a new field (a member) it is invisible.
        when = datetime.now(VIETNAM).strftime("%d/%m/%Y %H:%M (GMT+7)")
        pdf_signer = signers.PdfSigner(meta, signer, timestamper=stamper, stamp_style=_stamp())
        try:
            await pdf_signer.async_sign_pdf(writer, output=out, appearance_text_params={"when": when})
        finally:
            if context is not None:
                await context.aclose()  # type: ignore[no-untyped-call]
        return out.getvalue()

    return asyncio.run(sign())


def _field_for(base: bytes, role: str, used: set[str]) -> str | None:
    """The empty field of the role's block in `base` (minutes_pdf.SIGNATURE_FIELDS), if it is
    there and nobody signed in it yet (a chair named after someone signed as chair)."""
    name = minutes_pdf.SIGNATURE_FIELDS.get(role)
    if name is None or name in used:
        return None
    try:
        empty = fields.enumerate_sig_fields(PdfFileReader(io.BytesIO(base), strict=False), filled_status=False)
        return name if any(found == name for found, _, _ in empty) else None
    except Exception:
        return None


async def _freeze(services: Services, consult: Consult) -> MinutesVersion:
    """The current version's row, frozen now (generated and kept) if nobody signed it yet."""
    db = services.db
    for _ in range(ATTEMPTS):
        rows = await _versions(db, consult.id)
        last_seq = await _last_note_seq(db, consult.id)
        current, frozen = signing.current_version(_frozen(rows), last_seq)
        if frozen:
            return rows[-1]
        chain_seq, chain_hash = await _head(db)
        edition = minutes_pdf.Edition(current, chain_seq, chain_hash, await _earlier(db, consult.id, current))
        body = await minutes_pdf.document(db, consult, edition)
        sha256, size = await services.blobs.put(_one(body), MAX_PDF_BYTES)
        try:
            async with db.session() as session, session.begin():
                session.add(
                    MinutesVersion(
                        consult_id=consult.id,
                        version=current,
                        notes_upto=last_seq,
                        chain_seq=chain_seq,
                        chain_hash=chain_hash,
                        base_sha256=sha256,
                        sha256=sha256,
                        size=size,
                        locked=False,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            continue  # another signer froze it first: theirs is the version
    raise AppError("unavailable", "the minutes changed while being signed; try again")


async def _head(db: Database) -> tuple[int, str]:
    async with db.session() as session:
        head = await session.get(ChainHead, chain.HEAD_ID)
    return (head.seq, head.hash) if head else (0, chain.GENESIS)


async def _commit(db: Database, version: MinutesVersion, signature: MinutesSignature, size: int, address: str) -> bool:
    """The compare-and-set: the version's latest PDF becomes the signed one only if it is still
    the base it was signed from. Its first statement takes the version's row lock (PostgreSQL) or
    the write lock (SQLite), so the roles read after it are every signature before this one."""
    async with db.session() as session:
        try:
            moved = await session.execute(
                update(MinutesVersion)
                .where(
                    MinutesVersion.consult_id == version.consult_id,
                    MinutesVersion.version == version.version,
                    MinutesVersion.sha256 == signature.base_sha256,
                )
                .values(sha256=signature.sha256, size=size)
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return False
            roles = set(
                await session.scalars(
                    select(MinutesSignature.role).where(
                        MinutesSignature.consult_id == version.consult_id,
                        MinutesSignature.version == version.version,
                    )
                )
            )
            if signing.locks(roles | {signature.role}):
                await session.execute(
                    update(MinutesVersion)
                    .where(MinutesVersion.consult_id == version.consult_id, MinutesVersion.version == version.version)
                    .values(locked=True)
                )
            session.add(signature)
            chain.append(
                session,
                "minutes.sign",
                "minutes_signature",
                signature.id,
                chain.signature_content(signature),
                actor_id=signature.signer_id,
                address=address,
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise AppError("conflict", "you have signed this version of the minutes already") from None
        except BaseException:
            await session.rollback()
            raise
    return True


async def sign(services: Services, consult: Consult, account: Account, pin: str, address: str) -> SignaturesView:
    """The caller's signature on the current version; every signature of it so far."""
    db = services.db
    if consult.status != "ended":
        raise AppError("conflict", "the minutes are signed once the consult has ended")
    key = await signing_keys.get(db, account.id)
    if key is None:
        raise AppError("conflict", "you have no signing certificate; ask the administrator to upload yours")
    now = utcnow()
    if signing.resting(key.locked_until, now):
        assert key.locked_until is not None
        raise AppError(
            "rate_limited",
            "too many wrong PINs: this signing key rests for a while",
            retry_after_s=round((key.locked_until - now).total_seconds(), 1),
        )
    if key.not_after <= now:
        raise AppError("conflict", "your signing certificate has expired; ask the administrator for a new one")
    sealed = signing_keys.unseal(signing_keys.seal_key(services.settings), account.id, key.sealed)
    opened = await asyncio.to_thread(signing_keys.open_pkcs12, sealed, pin)
    if opened is None:
        until = await signing_keys.wrong_pin(db, account.id)
        await audit.record(db, account.id, "minutes.sign_refused", "consult", consult.id, address, "wrong PIN")
        rest = " Too many wrong PINs: the key now rests for a while." if until else ""
        raise AppError("forbidden", f"wrong PIN: nothing was signed.{rest}")
    if key.wrong_pins:
        await signing_keys.right_pin(db, account.id)
    roots = trust_roots(services.settings.signing_trust_roots)
    standing = await asyncio.to_thread(_standing, opened, roots)
    if standing == "revoked":
        await audit.record(db, account.id, "minutes.sign_refused", "consult", consult.id, address, "revoked")
        raise AppError(
            "conflict", "your signing certificate has been revoked by its CA; ask the administrator for a new one"
        )
    row = await minutes.ensure(db, consult)
    role = signing.role_of(account.id, row.chair_id or consult.specialist_id, row.secretary_id or consult.requester_id)
    for _ in range(ATTEMPTS):
        version = await _freeze(services, consult)
        signed = [s for s in await _signatures(db, consult.id) if s.version == version.version]
        if any(s.signer_id == account.id for s in signed):
            raise AppError("conflict", "you have signed this version of the minutes already")
        base = await _read(services, version.sha256)
        signature_id = new_id()
        field = _field_for(base, role, {s.field for s in signed}) or f"Signature{len(signed) + 1}-{signature_id[:12]}"
        try:
            body = await asyncio.to_thread(
                _sign_pdf, base, opened, field, services.settings.tsa_url, roots if standing == "trusted" else []
            )
        except Exception as error:  # the TSA down or refusing: nothing was signed
            log.warning("signing the minutes of %s failed: %s", consult.id, type(error).__name__)
            raise AppError(
                "unavailable", "the signature could not be made now (time-stamping service?); try again"
            ) from None
        sha256, size = await services.blobs.put(_one(body), MAX_PDF_BYTES)
        signature = MinutesSignature(
            id=signature_id,
            consult_id=consult.id,
            version=version.version,
            signer_id=account.id,
            role=role,
            field=field,
            signed_at=utcnow(),
            base_sha256=version.sha256,
            sha256=sha256,
        )
        if await _commit(db, version, signature, size, address):
            return await validated(services, consult, version.version)
    raise AppError("unavailable", "others were signing these minutes at the same time; try again")


# Validation ----------------------------------------------------------------------------------


def trust_roots(path: Path | None) -> list[asn1_x509.Certificate]:
    if path is None:
        return []
    return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(path.read_bytes(), multiple=True)]


def check(body: bytes, roots: list[asn1_x509.Certificate]) -> dict[str, Checked]:
    """Every signature embedded in `body`, by field name, validated with pyHanko against `roots`,
    asking the CAs whether the certificates were revoked (`_context`): a revoked one is not
    trusted. A PDF that no longer parses has none. The network: runs in a worker thread."""
    try:
        embedded = PdfFileReader(io.BytesIO(body), strict=False).embedded_signatures
    except Exception:
        return {}

    async def validate(sig: Any) -> Checked:
        context = _context(roots)
        try:
            status = await async_validate_pdf_signature(sig, context, ts_validation_context=context)
        except Exception:
            return Checked(False, False, False)
        finally:
            await context.aclose()  # type: ignore[no-untyped-call]
        stamp = status.timestamp_validity
        return Checked(
            intact=bool(status.intact and status.valid),
            trusted=bool(status.intact and status.valid and status.trusted and not status.revoked),
            timestamped=bool(stamp is not None and stamp.intact and stamp.valid),
        )

    async def every() -> dict[str, Checked]:
        return {sig.field_name: await validate(sig) for sig in embedded}

    return asyncio.run(every())


async def validated(services: Services, consult: Consult, version: int | None) -> SignaturesView:
    """`GET …/minutes/signatures`: every signature of the version, validated now."""
    db = services.db
    now = await state(db, consult.id)
    wanted = now.current if version is None else version
    if not 1 <= wanted <= now.current:
        raise AppError("not_found", f"these minutes have versions 1 to {now.current}")
    every = await _signatures(db, consult.id)
    who = await consults.people(db, [s.signer_id for s in every])
    views: list[SignatureView] = []
    row = next((r for r in now.versions if r.version == wanted), None)
    if row is not None:
        body = await _read(services, row.sha256)
        checked = await asyncio.to_thread(check, body, trust_roots(services.settings.signing_trust_roots))
        for s in every:
            if s.version == wanted:
                c = checked.get(s.field, Checked(False, False, False))
                views.append(
                    signature_view(who.get(s.signer_id), s.role, s.signed_at, c.intact, c.trusted, c.timestamped)
                )
    versions: list[MinutesVersionView] = [
        minutes_version_view(r.version, True, r.locked, [s.signer_id for s in every if s.version == r.version])
        for r in now.versions
    ]
    if not now.frozen:
        versions.append(minutes_version_view(now.current, False, False, []))
    return signatures_view(wanted, views, versions)


async def for_export(services: Services, consult: Consult) -> dict[str, Any] | None:
    """The latest signed version of the minutes for the FHIR export (server/actions/fhir.py):
    its number, PDF (SHA-256, SHA-1, size), whether it is locked, and who signed it; None when
    nothing was signed yet."""
    rows = await _versions(services.db, consult.id)
    if not rows:
        return None
    row = rows[-1]
    body = await _read(services, row.sha256)
    signed = [s for s in await _signatures(services.db, consult.id) if s.version == row.version]
    who = await consults.people(services.db, [s.signer_id for s in signed])
    return {
        "version": row.version,
        "sha256": row.sha256,
        "sha1": base64.b64encode(hashlib.sha1(body).digest()).decode(),
        "size": row.size,
        "locked": row.locked,
        "created_at": iso(row.created_at),
        "signatures": [{"signer": who.get(s.signer_id), "role": s.role, "signed_at": iso(s.signed_at)} for s in signed],
    }


# The anchors: signed minutes against the audit chain -----------------------------------------


def anchored_head(body: bytes) -> tuple[int, str] | None:
    """The audit chain's head (seq, hash) a signed version of the minutes printed, read from the
    revision its first signature covers, once that signature is found intact; None otherwise (no
    signature, an altered one, a PDF that does not parse or names no head)."""
    try:
        reader = PdfFileReader(io.BytesIO(body), strict=False)
        first = min(reader.embedded_signatures, key=lambda sig: sig.signed_revision, default=None)
        if first is None:
            return None
        # Integrity only (the digest over the signed bytes and the signature over it, by the
        # certificate it carries); whether that certificate is trusted is `check`'s question.
        intact, valid = validate_sig_integrity(first.signer_info, first.signer_cert, "data", first.compute_digest())
        if not (intact and valid and first.evaluate_signature_coverage() >= SignatureCoverageLevel.ENTIRE_REVISION):
            return None
        # The file as that signature signed it ends where its byte range ends; its keywords are
        # in its XMP metadata (a PDF/A file carries no Info dictionary).
        _, _, start, length = (int(n) for n in first.sig_object["/ByteRange"])
        signed = PdfFileReader(io.BytesIO(body[: start + length]), strict=False)
        found = minutes_pdf.ANCHORED.search(signed.root["/Metadata"].data.decode("utf-8", "replace"))
    except Exception:
        return None
    return (int(found[1]), found[2]) if found else None


async def anchors(db: Database, blobs: BlobStore) -> str | None:
    """The first signed version of the minutes whose printed head the audit chain no longer holds
    (`python -m server verify-audit`, after the walk). The walk finds an entry changed, removed or
    added; these find the chain rewritten as a whole (every hash computed again, which the walk
    cannot tell from the real one): the entry a signed PDF printed would no longer be the one
    the signers saw. None when every signed version agrees with the chain."""
    async with db.session() as session:
        signed = (
            await session.scalars(
                select(MinutesVersion)
                .where(MinutesVersion.sha256 != MinutesVersion.base_sha256)
                .order_by(MinutesVersion.created_at, MinutesVersion.consult_id, MinutesVersion.version)
            )
        ).all()
    for row in signed:
        name = f"the signed minutes of consult {row.consult_id}, version {row.version}"
        try:
            body = await (await blobs.open(row.sha256)).read()
        except BlobMissing:
            return f"{name}: the signed PDF ({row.sha256}) is missing from the blob store"
        except (BlobDamaged, OSError):
            return f"{name}: the signed PDF ({row.sha256}) cannot be read whole from the blob store"
        head = await asyncio.to_thread(anchored_head, body)
        if head is None:
            return f"{name}: no intact signature covers the audit chain's head it printed"
        seq, printed = head
        async with db.session() as session:
            entry = select(AuditEntry.hash).where(AuditEntry.seq == seq)
            held = chain.GENESIS if seq == 0 else await session.scalar(entry)
        if held != printed:
            return (
                f"{name} printed the audit chain's entry {seq} as {printed}, and signed it;"
                f" the chain holds {held or 'no such entry'}: the chain was rewritten"
            )
    return None
