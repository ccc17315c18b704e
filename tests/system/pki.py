"""A test PKI made with `cryptography`: a root CA, users' PKCS#12 files, a time-stamping
authority answering RFC 3161 requests over HTTP on loopback (pyHanko's own time stamper behind a
small aiohttp app), the root's revocation list over HTTP on loopback (every certificate it issues
names it), another CA nobody trusts, and an NSS database trusting the root for pdfsig."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from server.runtime.redis_process import free_port

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _name(common: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())  # quick to make; pyHanko and NSS both take it


@dataclass
class Authority:
    key: Key
    cert: x509.Certificate
    crl_url: str = ""  # named in every certificate it issues (its CRL distribution point)
    revoked: set[int] = field(default_factory=set)  # serial numbers

    @classmethod
    def root(cls, common: str) -> Authority:
        key = _key()
        name = _name(common, "Test CA")
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(
        self, common: str, org: str, *, tsa: bool = False, valid_days: int = 365, starts_days: int = -1
    ) -> tuple[Key, x509.Certificate]:
        # pyHanko's own time stamper signs with RSA only.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if tsa else _key()
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common, org))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=starts_days))
            .not_valid_after(now + timedelta(days=starts_days + valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if self.crl_url:
            point = x509.DistributionPoint([x509.UniformResourceIdentifier(self.crl_url)], None, None, None)
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        if tsa:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            ).add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        else:
            builder = builder.add_extension(
                x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
            )
        return key, builder.sign(self.key, hashes.SHA256())

    def pkcs12(self, common: str, org: str, pin: str, **kwargs: int) -> bytes:
        key, cert = self.issue(common, org, **kwargs)
        return pkcs12.serialize_key_and_certificates(
            b"signing", key, cert, [self.cert], serialization.BestAvailableEncryption(pin.encode())
        )

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def crl(self) -> bytes:
        """The revocation list now (DER): every serial in `revoked`, valid for an hour."""
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - timedelta(minutes=1))
            .next_update(now + timedelta(hours=1))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        )
        for serial in sorted(self.revoked):
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - timedelta(minutes=1))
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class Pki:
    root: Authority
    stranger: Authority  # another CA, trusted by nobody here
    roots_pem: Path
    nss_dir: Path
    tsa_key: Key
    tsa_cert: x509.Certificate
    files: dict[str, bytes] = field(default_factory=dict)  # username → PKCS#12

    def timestamper(self) -> DummyTimeStamper:
        der = self.tsa_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return DummyTimeStamper(
            tsa_cert=asn1_x509.Certificate.load(self.tsa_cert.public_bytes(serialization.Encoding.DER)),
            tsa_key=asn1_keys.PrivateKeyInfo.load(der),
            certs_to_embed=[asn1_x509.Certificate.load(self.root.cert.public_bytes(serialization.Encoding.DER))],
        )


PIN = "2468"


def make(folder: Path) -> Pki:
    """The root CA, a specialist at Xanh Pôn's and a clinician at Ba Vì's PKCS#12 files (PIN
    `PIN`), the TSA, the trust roots as PEM, and an NSS database trusting the root (for pdfsig)."""
    root = Authority.root("Telerounds Test Root CA")
    root.crl_url = f"http://127.0.0.1:{free_port()}/root.crl"  # answered by `revocation_list`
    stranger = Authority.root("Some Other CA")
    tsa_key, tsa_cert = root.issue("Telerounds Test TSA", "Test CA", tsa=True)
    roots_pem = folder / "roots.pem"
    roots_pem.write_bytes(root.pem())
    nss_dir = folder / "nss"
    nss_dir.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss_dir}", "--empty-password"], check=True, timeout=30)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{nss_dir}", "-n", "telerounds-test-root", "-t", "CT,C,C", "-i", str(roots_pem)],
        check=True,
        timeout=30,
    )
    pki = Pki(root, stranger, roots_pem, nss_dir, tsa_key, tsa_cert)
    pki.files["xanhpon.surgeon"] = root.pkcs12("BS. Lê Minh Đức", "Bệnh viện Xanh Pôn", PIN)
    pki.files["bavi.clinician"] = root.pkcs12("BS. Nguyễn Văn Hùng", "Bệnh viện Đa khoa Ba Vì", PIN)
    return pki


@asynccontextmanager
async def time_stamping(pki: Pki) -> AsyncIterator[str]:
    """An RFC 3161 time-stamping service over HTTP on loopback; yields its URL."""
    stamper = pki.timestamper()
    requests: list[int] = []

    async def answer(request: web.Request) -> web.Response:
        if request.content_type != "application/timestamp-query":
            return web.Response(status=415)
        query = tsp.TimeStampReq.load(await request.read())
        response = await stamper.async_request_tsa_response(query)
        requests.append(1)
        return web.Response(body=response.dump(), content_type="application/timestamp-reply")

    app = web.Application()
    app.router.add_post("/tsa", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/tsa"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def revocation_list(pki: Pki) -> AsyncIterator[None]:
    """The root's CRL over HTTP at the address its certificates name, made anew on each request
    (so a serial added to `pki.root.revoked` counts at the next fetch)."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=pki.root.crl(), content_type="application/pkix-crl")

    url = urlsplit(pki.root.crl_url)
    app = web.Application()
    app.router.add_get(url.path, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, url.hostname, url.port).start()
    try:
        yield
    finally:
        await runner.cleanup()


def pdfsig(pki: Pki, pdf: Path) -> str:
    """poppler's verdict on every signature of `pdf`, trusting the test root through NSS."""
    done = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{pki.nss_dir}", str(pdf)], capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr
