"""The blob store: files every instance can read (attachments now; recordings and signed minutes later).

One folder that every instance mounts (`BLOB_DIR`). A blob is named by the SHA-256 of its bytes
(`ab/cd/<sha256>`), so the same name always means the same bytes, whichever instance wrote it
and whenever. It is written once: streamed into a temporary file while being hashed, flushed to
disk (fsync), then linked into place in one step, read-only; a blob already in place is never
rewritten. Every read hashes the file again before the first byte is served: a file altered on
disk (a faulty disk, a hand edit, a restore gone wrong) is refused with `BlobDamaged`, logged,
never served as if it were the record.

All file work runs in worker threads: a slow or network-mounted disk never holds the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from server.contract.errors import AppError

log = logging.getLogger("telerounds.blobs")

CHUNK = 256 * 1024  # bytes read or written per worker-thread call
STALE_INCOMING_S = 24 * 3600.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobMissing(AppError):
    """No blob of that name in the store."""

    def __init__(self, sha256: str) -> None:
        super().__init__("not_found", f"the file {sha256[:12]}… is not in the blob store")
        self.sha256 = sha256


class BlobDamaged(AppError):
    """The bytes on disk no longer hash to the blob's name: refused, never served.

    A fault of the server's storage, not of the request: HTTP 500, with a message saying so."""

    def __init__(self, sha256: str) -> None:
        super().__init__(
            "unavailable",
            "the stored file failed its integrity check (its content no longer matches the SHA-256 "
            "recorded when it was uploaded) and is not served; this has been logged for the administrator",
        )
        self.sha256 = sha256

    @property
    def http_status(self) -> int:
        return 500


class BlobTooLarge(AppError):
    def __init__(self, limit: int) -> None:
        super().__init__("too_large", f"a file is at most {limit} bytes")
        self.limit = limit


def check_name(sha256: str) -> str:
    """A blob's name: 64 lowercase hex digits, nothing else (never a path)."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


class Blob:
    """An open blob whose content was checked against its name before this was handed out.

    Iterating gives its bytes in chunks; they are hashed again on the way, and should the file
    change while it is being read, the last step raises `BlobDamaged` instead of ending normally
    (a response of known length then ends short, so the client never takes it as whole)."""

    def __init__(self, file: BinaryIO, sha256: str, size: int) -> None:
        self._file = file
        self.sha256 = sha256
        self.size = size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        try:
            while chunk := await asyncio.to_thread(self._file.read, CHUNK):
                digest.update(chunk)
                yield chunk
        finally:
            self.close()
        if digest.hexdigest() != self.sha256:
            log.error("blob %s changed on disk while being read; the read was cut short", self.sha256)
            raise BlobDamaged(self.sha256)

    async def read(self) -> bytes:
        """The whole content (small blobs only)."""
        return b"".join([chunk async for chunk in self])

    def close(self) -> None:
        self._file.close()


class BlobStore:
    """put(stream) -> (sha256, size); open(sha256) -> a verified `Blob`; exists(sha256)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._incoming = root / "incoming"  # temporary files: same file system, so the link is atomic

    def path_of(self, sha256: str) -> Path:
        check_name(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put(self, chunks: AsyncIterable[bytes], limit: int) -> tuple[str, int]:
        """Store what `chunks` yields, at most `limit` bytes (beyond: `BlobTooLarge`, nothing kept).

        Returns the blob's SHA-256 and size once it is on disk (fsynced, file and folder)."""
        await asyncio.to_thread(self._incoming.mkdir, parents=True, exist_ok=True)
        temp = self._incoming / f"{secrets.token_hex(16)}.part"
        file = await asyncio.to_thread(open, temp, "xb")
        digest, size = hashlib.sha256(), 0
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise BlobTooLarge(limit)
                    digest.update(chunk)
                    await asyncio.to_thread(file.write, chunk)
                await asyncio.to_thread(_flush, file)
            finally:
                file.close()
            sha256 = digest.hexdigest()
            await asyncio.to_thread(self._place, temp, sha256)
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)
        return sha256, size

    def _place(self, temp: Path, sha256: str) -> None:
        """Link the finished temporary file in under its name, unless that blob is there already."""
        target = self.path_of(sha256)
        if target.exists():
            if _digest_of_path(target) == sha256:
                return  # written once: the same bytes are already in place
            # A damaged copy is replaced by the verified one just received (atomically).
            log.error("blob %s was damaged on disk; replaced by a verified copy of the same content", sha256)
            os.chmod(temp, 0o444)
            os.replace(temp, target)
            _fsync_dir(target.parent)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(temp, 0o444)
        try:
            # A hard link creates the name only if it is absent: two instances storing the same
            # bytes at once leave one file, never one overwriting the other.
            os.link(temp, target)
        except FileExistsError:
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            os.rename(temp, target)  # a file system without hard links: the same bytes either way
        _fsync_dir(target.parent)

    async def open(self, sha256: str) -> Blob:
        """The blob, checked: `BlobMissing` if absent, `BlobDamaged` (logged) if its bytes do not
        hash to its name."""
        path = self.path_of(sha256)
        try:
            file = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        try:
            actual, size = await asyncio.to_thread(_digest_of_file, file)
            if actual != sha256:
                log.error("blob %s is damaged on disk (its content hashes to %s); refused", sha256, actual)
                raise BlobDamaged(sha256)
            await asyncio.to_thread(file.seek, 0)
        except BaseException:
            file.close()
            raise
        return Blob(file, sha256, size)

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path_of(sha256).is_file)

    async def remove_stale_incoming(self, older_than_s: float = STALE_INCOMING_S) -> int:
        """Remove temporary files that no put is writing any more (an instance that crashed
        mid-upload leaves one); how many. A put in progress writes its file every few seconds
        at most, so a day-old one belongs to nobody."""
        return await asyncio.to_thread(self._remove_stale, older_than_s)

    def _remove_stale(self, older_than_s: float) -> int:
        if not self._incoming.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self._incoming.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # another instance removed it first
        return removed

    async def check_writable(self) -> None:
        """Write, flush and remove a small file, as a put would (raises OSError when the store
        cannot be written: a read-only or full volume, a missing mount)."""
        await asyncio.to_thread(self._probe)

    def _probe(self) -> None:
        self._incoming.mkdir(parents=True, exist_ok=True)
        probe = self._incoming / f"ready-{secrets.token_hex(8)}.probe"
        try:
            with open(probe, "xb") as file:
                file.write(b"ready")
                _flush(file)
        finally:
            probe.unlink(missing_ok=True)


def _flush(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable (the file's own fsync does not cover its name)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest_of_file(file: BinaryIO) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := file.read(CHUNK):
        digest.update(chunk)  # hashlib lets go of the GIL for large chunks: the loop keeps running
        size += len(chunk)
    return digest.hexdigest(), size


def _digest_of_path(path: Path) -> str:
    with open(path, "rb") as file:
        return _digest_of_file(file)[0]


def digest_of_path(path: Path) -> str:
    """A stored file's SHA-256 (blocking: call it in a worker thread)."""
    return _digest_of_path(path)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """A file's bytes as chunks for `put`, read in worker threads."""
    file = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK):
            yield chunk
    finally:
        file.close()
