"""Users' signing keys: a PKCS#12 file (key and certificate, from a CA) per user, uploaded by an
admin. It stays protected by its own password (the PIN the user gives when signing, never
stored), and is sealed again at rest with AES-256-GCM under a key derived from the settings'
SIGNING_KEY (or SECRET_KEY), bound to its user: a copy of the database alone opens nothing, and
a sealed file moved to another user's row does not open."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import Certificate
from sqlalchemy import update

from server.contract.errors import AppError
from server.contract.validation import MAX_PIN_CHARS
from server.policy import signing
from server.records import audit
from server.records.models import Database, SigningCertificate, utcnow
from server.runtime.settings import Settings

MAX_PKCS12_BYTES = 64 * 1024  # a key, its certificate and a CA chain fit in a few kB
NONCE = 12


def seal_key(settings: Settings) -> bytes:
    """The 256-bit AES key that seals the PKCS#12 files: from SIGNING_KEY, else SECRET_KEY."""
    secret = (settings.signing_key or settings.secret_key).encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"telerounds pkcs12 seal").derive(secret)


def seal(key: bytes, user_id: str, data: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, data, user_id.encode())


def unseal(key: bytes, user_id: str, sealed: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], user_id.encode())
    except InvalidTag:
        raise AppError(
            "unavailable", "this signing key cannot be opened with the server's SIGNING_KEY; ask the administrator"
        ) from None


@dataclass(frozen=True)
class Opened:
    """A PKCS#12 opened with its PIN: the key (PKCS#8 DER) and certificate, and the CA chain."""

    key_der: bytes
    certificate: Certificate
    chain: tuple[Certificate, ...]


def open_pkcs12(data: bytes, pin: str) -> Opened | None:
    """The key and certificate, or None when `pin` does not open it. CPU work: call in a thread."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, pin.encode())
    except (ValueError, TypeError):
        return None
    if key is None or cert is None:
        return None
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Opened(der, cert, tuple(extra))


def check_upload(data: bytes, pin: str, now: datetime) -> Opened:
    """A PKCS#12 an admin uploads: within bounds, opened by its password, holding a key that
    matches a certificate valid now. `invalid` saying what is wrong otherwise."""
    if not data:
        raise AppError("invalid", "file: a PKCS#12 (.p12 / .pfx) file is required")
    if len(data) > MAX_PKCS12_BYTES:
        raise AppError("too_large", f"file: a PKCS#12 file is at most {MAX_PKCS12_BYTES} bytes")
    if not pin or len(pin) > MAX_PIN_CHARS:
        raise AppError("invalid", f"password: 1 to {MAX_PIN_CHARS} characters")
    opened = open_pkcs12(data, pin)
    if opened is None:
        raise AppError("invalid", "file: not a PKCS#12 file this password opens, or it holds no key and certificate")
    cert = opened.certificate
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise AppError("invalid", "file: the certificate is not valid now")
    key = serialization.load_der_private_key(opened.key_der, None)
    mine = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    theirs = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if mine != theirs:
        raise AppError("invalid", "file: the key does not belong to the certificate")
    return opened


async def store(
    db: Database, settings: Settings, user_id: str, data: bytes, opened: Opened, uploaded_by: str, address: str
) -> SigningCertificate:
    """Keep (or replace) the user's signing key, sealed; audited in the same transaction."""
    cert = opened.certificate
    row = SigningCertificate(
        user_id=user_id,
        sealed=seal(seal_key(settings), user_id, data),
        subject=cert.subject.rfc4514_string()[:500],
        issuer=cert.issuer.rfc4514_string()[:500],
        fingerprint=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        not_after=cert.not_valid_after_utc,
        uploaded_by=uploaded_by,
        uploaded_at=utcnow(),
        wrong_pins=0,
        locked_until=None,
    )
    async with db.session() as session, session.begin():
        await session.merge(row)
        session.add(audit.entry(uploaded_by, "admin.user.certificate", "user", user_id, address, row.fingerprint))
    return row


async def get(db: Database, user_id: str) -> SigningCertificate | None:
    async with db.session() as session:
        return await session.get(SigningCertificate, user_id)


async def wrong_pin(db: Database, user_id: str) -> datetime | None:
    """Count a wrong PIN; until when the key now rests (None: not yet). The increment is the
    transaction's first statement (a row lock, SQLite's write lock): guesses from every instance
    are all counted."""
    now = utcnow()
    async with db.session() as session, session.begin():
        count = await session.scalar(
            update(SigningCertificate)
            .where(SigningCertificate.user_id == user_id)
            .values(wrong_pins=SigningCertificate.wrong_pins + 1)
            .returning(SigningCertificate.wrong_pins)
        )
        if count is None:
            return None
        left, until = signing.after_wrong_pin(count, now)
        if until is not None:
            await session.execute(
                update(SigningCertificate)
                .where(SigningCertificate.user_id == user_id)
                .values(wrong_pins=left, locked_until=until)
            )
    return until


async def right_pin(db: Database, user_id: str) -> None:
    async with db.session() as session, session.begin():
        await session.execute(
            update(SigningCertificate).where(SigningCertificate.user_id == user_id).values(wrong_pins=0)
        )
