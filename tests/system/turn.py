"""coturn on loopback for the TURN tests: Debian's `turnserver` as a child process of the test run.

It uses the REST-API shared secret as a deployment does (server/runtime/ice.py mints the
credentials), listens on one free port for both UDP and TCP (and, when asked, on another for TLS,
with a certificate for 127.0.0.1 from a CA of the test's own, `tls_ca`), relays on a small port
range of loopback, and is killed at teardown, or with the test process should that die first (the kernel
sends it SIGKILL when its parent goes). `make test` installs coturn (scripts/ensure-coturn).
"""

from __future__ import annotations

import ctypes
import ipaddress
import random
import shutil
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SECRET = "turn-test-secret"
REALM = "telerounds.test"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    """A port free for both UDP and TCP on loopback (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for turnserver")


class TurnServer:
    """`turnserver` on 127.0.0.1:`port` (UDP and TCP), relaying on loopback only."""

    def __init__(self, workdir: Path, *, allocation_lifetime_s: int = 600, tls: bool = False) -> None:
        self.workdir = workdir
        self.allocation_lifetime_s = allocation_lifetime_s
        self.tls = tls
        self.port = 0
        self.tls_port = 0
        self.tls_ca = workdir / "turn-ca.pem"  # what a client trusts to reach `tls_url`
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def tls_url(self) -> str:
        return f"turns:127.0.0.1:{self.tls_port}?transport=tcp"

    @property
    def udp_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def tcp_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=tcp"

    def settings(self, *urls: str, ttl_s: int = 3600) -> dict[str, str]:
        """Settings of an instance whose calls go through this server only (relay policy)."""
        return {
            "TURN_URLS": ",".join(urls or (self.udp_url, self.tcp_url)),
            "TURN_SECRET": SECRET,
            "TURN_TTL_S": str(ttl_s),
            "ICE_TRANSPORT_POLICY": "relay",
        }

    def start(self) -> TurnServer:
        executable = shutil.which("turnserver")
        assert executable, "the TURN tests need coturn: `make test` installs it (scripts/ensure-coturn)"
        self.port = _free_port()
        # A relay range of its own, away from the ephemeral ports the kernel hands out.
        low = random.randrange(20000, 30000, 100)
        self.log = self.workdir / "turnserver.log"
        command = [
            executable,
            "--use-auth-secret",
            f"--static-auth-secret={SECRET}",
            f"--realm={REALM}",
            "--no-cli",
            *self._tls_options(),
            "--no-dtls",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            "--allow-loopback-peers",
            f"--listening-port={self.port}",
            f"--min-port={low}",
            f"--max-port={low + 99}",
            f"--max-allocate-lifetime={self.allocation_lifetime_s}",
            f"--userdb={self.workdir / 'turndb'}",
            f"--pidfile={self.workdir / 'turnserver.pid'}",
            "--log-file=stdout",
            "--simple-log",
        ]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, preexec_fn=_die_with_parent
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"turnserver exited: {self.log.read_text()[-2000:]}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"turnserver did not listen within 10 s: {self.log.read_text()[-2000:]}")

    def _tls_options(self) -> list[str]:
        if not self.tls:
            return ["--no-tls"]
        self.tls_port = _free_port()
        cert, key = _tls_files(self.workdir, self.tls_ca)
        return [f"--tls-listening-port={self.tls_port}", f"--cert={cert}", f"--pkey={key}"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def _tls_files(folder: Path, ca_pem: Path) -> tuple[Path, Path]:
    """A CA (written to `ca_pem`) and a certificate it issued for 127.0.0.1, with its key."""
    now = datetime.now(UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("telerounds test TURN CA"))
        .issuer_name(name("telerounds test TURN CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = folder / "turn-cert.pem", folder / "turn-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
