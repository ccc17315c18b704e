"""An attachment's file: received into the blob store, read back from it (checked), and files
kept by earlier versions under one instance's TELEROUNDS_VAR_DIR moved into it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import BodyPartReader
from sqlalchemy import select

from server.contract.errors import AppError
from server.records.blobs import Blob, BlobDamaged, BlobMissing, file_chunks
from server.records.models import Attachment
from server.runtime.services import Services

log = logging.getLogger("telerounds.attachments")

# The type comes from the first bytes of the content, never from the name or the client's header.
SIGNATURES = [
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"%PDF-", "application/pdf", ".pdf"),
]
_HEAD = max(len(signature) for signature, _, _ in SIGNATURES)
# Files written before the blob store are adopted whatever their size: they were accepted then.
_LEGACY_LIMIT = 1 << 40


async def receive(services: Services, part: BodyPartReader, limit: int) -> tuple[str, int, str, str]:
    """Stream an uploaded file into the blob store, never holding it whole in memory.

    Returns `(sha256, size, content_type, extension)`; `invalid` when the content is not a JPEG,
    PNG or PDF (judged before anything is stored), `BlobTooLarge` beyond `limit` bytes."""
    head = b""
    while len(head) < _HEAD and (chunk := await part.read_chunk(64 * 1024)):
        head += chunk
    kind = next(((t, ext) for sig, t, ext in SIGNATURES if head.startswith(sig)), None)
    if kind is None:
        raise AppError("invalid", "only JPEG, PNG and PDF files can be attached")

    async def body() -> AsyncIterator[bytes]:
        yield head
        while chunk := await part.read_chunk(64 * 1024):
            yield chunk

    sha256, size = await services.blobs.put(body(), limit)
    return sha256, size, *kind


def legacy_path(services: Services, item: Attachment) -> Path:
    """Where versions before the blob store kept the file: under the receiving instance's var dir."""
    return services.settings.var_dir / "attachments" / item.consult_id / item.id


async def open_file(services: Services, item: Attachment) -> Blob:
    """The attachment's file, checked against the SHA-256 recorded at upload.

    `not_found` when no instance's store has it; `BlobDamaged` (HTTP 500, logged) when the bytes
    on disk are not the ones recorded."""
    try:
        return await services.blobs.open(item.sha256)
    except BlobMissing:
        if not await adopt(services, item):
            raise AppError("not_found", "the file of this attachment is missing") from None
    return await services.blobs.open(item.sha256)


async def adopt(services: Services, item: Attachment) -> bool:
    """Move a file kept under this instance's var dir into the blob store, so that every instance
    reads it. False when there is no such file. A file whose content is not the one recorded is
    left where it is, logged, and refused (`BlobDamaged`)."""
    path = legacy_path(services, item)
    if not await asyncio.to_thread(path.is_file):
        return False
    sha256, _ = await services.blobs.put(file_chunks(path), _LEGACY_LIMIT)
    if sha256 != item.sha256:
        log.error("attachment %s: the file in %s does not match its recorded SHA-256; not adopted", item.id, path)
        raise BlobDamaged(item.sha256)
    await asyncio.to_thread(path.unlink)  # stored, fsynced and checked: the store's copy is the one now
    return True


async def adopt_all(services: Services) -> None:
    """At start: adopt every attachment file this instance's var dir still holds, and remove
    the store's day-old unfinished uploads. A failure is logged; the files stay, and each is
    adopted when it is first read."""
    try:
        await adopt_files(services)
        if removed := await services.blobs.remove_stale_incoming():
            log.info("removed %d unfinished uploads left in the blob store", removed)
    except Exception:
        log.exception("attachment files could not be moved into the blob store now")


async def adopt_files(services: Services) -> int:
    """Adopt every attachment file under this instance's var dir; how many were."""
    folder = services.settings.var_dir / "attachments"
    found = await asyncio.to_thread(lambda: [p.name for p in folder.glob("*/*") if p.is_file()])
    adopted = 0
    for start in range(0, len(found), 500):
        batch = select(Attachment).where(Attachment.id.in_(found[start : start + 500]))
        async with services.db.session() as session:
            items = (await session.scalars(batch)).all()
        for item in items:
            try:
                adopted += await adopt(services, item)
            except (BlobDamaged, OSError) as exc:
                log.error("attachment %s could not be moved into the blob store: %s", item.id, exc)
    if adopted:
        log.info("moved %d attachment files from %s into the blob store", adopted, folder)
    return adopted
