"""Time to sign the minutes (PAdES, pyHanko) of a consult with 50 notes and 5 attachments, and to
validate the signatures: p50 over 20 runs; the signed PDF's size.

python -m bench.signing    prints the figures (docs/benchmarks.md, "Signing the minutes"); asserts nothing.

The minutes are bench/minutes.py's made-up record, rendered once. Each run adds the chair's then
the secretary's signature as incremental updates, each in its block (`server/actions/signatures.py` `_sign_pdf`, what
`POST …/minutes/sign` runs in a worker thread after opening the PKCS#12 with the PIN), first
without a timestamp (PAdES B-B), then with an RFC 3161 timestamp from a time-stamping service on
loopback (B-T), then also with the CA's revocation list fetched over loopback and embedded (B-LT,
as when `SIGNING_TRUST_ROOTS` trusts the signer), and validates the two signatures (`check`, what
`GET …/minutes/signatures` runs, asking the CA each time).
The keys are the tests' PKI (tests/system/pki.py): ECDSA P-256 signers, an RSA-2048 TSA.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from bench.minutes import made_up_record
from server.actions.minutes_pdf import Edition, MinutesInfo, render
from server.actions.signatures import _sign_pdf, check, trust_roots
from server.records.signing_keys import open_pkcs12
from server.runtime.redis_process import free_port
from tests.system.pki import PIN, Authority, Pki, revocation_list, time_stamping

RUNS = 20


def _ms(times: list[float]) -> str:
    return f"p50 {statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"


async def main_async() -> None:
    record = made_up_record()
    info = MinutesInfo(12, "Hà Nội", None, None, {"u1": 3540.0}, {"u2": ["surgery"]}, Edition(1, 4242, "ab" * 32))
    began = time.perf_counter()
    base = render(record, info)
    print(f"rendered once in {(time.perf_counter() - began) * 1000:.0f} ms; {len(base) / 1024:.0f} KB")
    root = Authority.root("Bench Root CA")
    root.crl_url = f"http://127.0.0.1:{free_port()}/root.crl"
    chair = open_pkcs12(root.pkcs12("BS. Lê Minh Đức", "Bệnh viện Xanh Pôn", PIN), PIN)
    secretary = open_pkcs12(root.pkcs12("BS. Nguyễn Văn Hùng", "Bệnh viện Đa khoa Ba Vì", PIN), PIN)
    assert chair is not None and secretary is not None
    with tempfile.TemporaryDirectory() as folder:
        roots_pem = Path(folder) / "roots.pem"
        roots_pem.write_bytes(root.cert.public_bytes(serialization.Encoding.PEM))
        roots = trust_roots(roots_pem)
        tsa_key, tsa_cert = root.issue("Bench TSA", "Bench CA", tsa=True)
        pki = Pki(root, root, roots_pem, Path(folder), tsa_key, tsa_cert)
        async with time_stamping(pki) as tsa_url, revocation_list(pki):
            for label, url, lt in (
                ("B-B (no timestamp)", "", []),
                ("B-T (RFC 3161 timestamp on loopback)", tsa_url, []),
                ("B-LT (B-T, and the CA's CRL fetched and embedded)", tsa_url, roots),
            ):
                first: list[float] = []
                second: list[float] = []
                validate: list[float] = []
                signed = base
                for _ in range(RUNS):
                    began = time.perf_counter()
                    once = await asyncio.to_thread(_sign_pdf, base, chair, "Chair", url, lt)
                    first.append(time.perf_counter() - began)
                    began = time.perf_counter()
                    signed = await asyncio.to_thread(_sign_pdf, once, secretary, "Secretary", url, lt)
                    second.append(time.perf_counter() - began)
                    began = time.perf_counter()
                    found = await asyncio.to_thread(check, signed, roots)
                    validate.append(time.perf_counter() - began)
                    assert all(c.intact and c.trusted for c in found.values()) and len(found) == 2
                print(
                    f"{label}: chair's signature {_ms(first)}; secretary's {_ms(second)}; "
                    f"validating both {_ms(validate)} over {RUNS} runs; "
                    f"signed PDF {len(signed) / 1024:.0f} KB (+{(len(signed) - len(base)) / 1024:.0f} KB)"
                )


def main() -> None:
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
