"""The blob store: files every instance reads, written once, checked on every read."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.records import attachments
from server.records.blobs import BlobDamaged, BlobMissing, BlobStore, BlobTooLarge
from server.records.models import Attachment, new_id, utcnow
from tests.conftest import Instance, StartInstance
from tests.system.test_record import JPEG, PNG, http
from tests.system.test_rtc import active_consult


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --- The store itself, on a real folder ------------------------------------------------------------


async def test_a_blob_is_named_by_its_sha256_written_once_and_read_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = "phim X-quang ngực, Ba Vì".encode() * 10_000
    sha256, size = await store.put(chunks_of(data), limit=len(data))
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    path = store.path_of(sha256)
    assert path == tmp_path / "blobs" / sha256[:2] / sha256[2:4] / sha256
    assert path.read_bytes() == data and await store.exists(sha256)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444  # nobody writes it again by accident
    before = path.stat()
    # The same bytes again, also from two writers at once: the file in place is not rewritten.
    again = await asyncio.gather(*(store.put(chunks_of(data, 1000), limit=len(data)) for _ in range(3)))
    assert again == [(sha256, size)] * 3
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert files_under(tmp_path / "blobs") == [path]  # no temporary file is left behind
    assert await (await store.open(sha256)).read() == data


async def test_a_blob_over_the_limit_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(BlobTooLarge) as refused:
        await store.put(chunks_of(b"x" * 1001), limit=1000)
    assert refused.value.code == "too_large"
    assert files_under(tmp_path / "blobs") == []
    assert await store.put(chunks_of(b"x" * 1000), limit=1000) == (hashlib.sha256(b"x" * 1000).hexdigest(), 1000)


async def test_an_upload_left_unfinished_by_a_crash_is_removed_after_a_day(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    sha256, _ = await store.put(chunks_of(PNG), limit=len(PNG))
    incoming = tmp_path / "blobs" / "incoming"
    old, fresh = incoming / "crashed.part", incoming / "writing.part"
    old.write_bytes(b"half a scan")
    fresh.write_bytes(b"half a scan")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    assert await store.remove_stale_incoming() == 1
    assert not old.exists() and fresh.exists() and await store.exists(sha256)


async def test_a_large_blob_is_streamed_never_held_in_memory(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    block = os.urandom(256 * 1024)
    total = 64 * len(block)  # 16 MB

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield block

    tracemalloc.start()
    try:
        sha256, size = await store.put(stream(), limit=total)
        blob = await store.open(sha256)
        read = 0
        async for chunk in blob:
            read += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.sha256()
    for _ in range(64):
        expected.update(block)
    assert (sha256, size, read) == (expected.hexdigest(), total, total)
    print(f"16 MB stored and read back with a peak of {peak / 1e6:.2f} MB of Python memory")
    assert peak < 3 * 1024 * 1024


async def test_a_blob_altered_on_disk_is_refused_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = BlobStore(tmp_path / "blobs")
    sha256, _ = await store.put(chunks_of(PNG), limit=len(PNG))
    path = store.path_of(sha256)
    os.chmod(path, 0o644)
    path.write_bytes(PNG[:-1] + b"\x01")  # one byte changed, same size
    with caplog.at_level(logging.ERROR, logger="telerounds.blobs"), pytest.raises(BlobDamaged) as refused:
        await store.open(sha256)
    assert refused.value.http_status == 500 and "integrity" in refused.value.message
    assert any(sha256 in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)
    # Storing the true bytes again replaces the damaged copy with a verified one.
    assert await store.put(chunks_of(PNG), limit=len(PNG)) == (sha256, len(PNG))
    assert await (await store.open(sha256)).read() == PNG
    with pytest.raises(BlobMissing):
        await store.open("0" * 64)
    with pytest.raises(ValueError):
        store.path_of("../../secret_key")


# --- Attachments through two instances ------------------------------------------------------------


async def two_instances_one_store(start_instance: StartInstance, tmp_path: Path) -> tuple[Instance, Instance]:
    """Two instances with their own TELEROUNDS_VAR_DIR (as two containers have) and one BLOB_DIR."""
    shared = str(tmp_path / "shared-blobs")
    a = await start_instance(TELEROUNDS_VAR_DIR=str(tmp_path / "var-a"), BLOB_DIR=shared)
    b = await start_instance(TELEROUNDS_VAR_DIR=str(tmp_path / "var-b"), BLOB_DIR=shared)
    return a, b


async def upload(instance: Instance, consult_id: str, name: str, content: bytes) -> dict[str, Any]:
    async with await http(instance, "bavi.clinician") as client:
        form = aiohttp.FormData()
        form.add_field("file", content, filename=name, content_type="image/png")
        async with client.post(f"/api/consults/{consult_id}/attachments", data=form) as resp:
            body = await resp.json()
            assert resp.status == 201, body
            return dict(body["attachment"])


async def test_an_attachment_uploaded_on_one_instance_downloads_on_the_other(
    start_instance: StartInstance, clients, tmp_path: Path
) -> None:
    a, b = await two_instances_one_store(start_instance, tmp_path)
    _clinician, _surgeon, consult = await active_consult(clients, a, b)
    big = PNG + os.urandom(3 * 1024 * 1024)  # several chunks on the way in and out
    stored = await upload(a, consult["id"], "xquang.png", big)
    assert stored["sha256"] == hashlib.sha256(big).hexdigest() and stored["size"] == len(big)
    async with await http(b, "xanhpon.surgeon") as specialist:
        async with specialist.get(stored["url"]) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.read() == big
            assert resp.headers["Content-Length"] == str(len(big))
            assert resp.headers["Content-Type"] == "image/png"
            assert resp.headers["Content-Disposition"].startswith("attachment;")
            assert resp.headers["Content-Security-Policy"].startswith("sandbox")
    # Nothing was kept in either instance's own folder: the shared store has the one copy.
    assert not (tmp_path / "var-a" / "attachments").exists() and not (tmp_path / "var-b" / "attachments").exists()
    assert files_under(tmp_path / "shared-blobs") == [b.services.blobs.path_of(stored["sha256"])]


async def test_an_attachment_whose_file_was_altered_is_refused_not_served(
    start_instance: StartInstance, clients, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await two_instances_one_store(start_instance, tmp_path)
    _clinician, _surgeon, consult = await active_consult(clients, a, b)
    stored = await upload(a, consult["id"], "xquang.png", PNG)
    path = a.services.blobs.path_of(stored["sha256"])
    os.chmod(path, 0o644)
    path.write_bytes(JPEG)  # another picture put in its place
    async with await http(b, "xanhpon.surgeon") as specialist:
        with caplog.at_level(logging.ERROR, logger="telerounds.blobs"):
            async with specialist.get(stored["url"]) as resp:
                body = await resp.read()
                assert resp.status == 500, body
                assert JPEG not in body and PNG not in body
                error = (await resp.json())["error"]
        assert "integrity check" in error["message"] and "logged" in error["message"]
        assert any(stored["sha256"] in r.getMessage() for r in caplog.records)
        # Another attachment of the same consult is unaffected.
        other = await upload(a, consult["id"], "anh.jpg", JPEG + b"\x01")
        async with specialist.get(other["url"]) as resp:
            assert resp.status == 200 and await resp.read() == JPEG + b"\x01"


async def test_an_attachment_kept_by_an_earlier_version_is_moved_into_the_store(
    start_instance: StartInstance, clients, tmp_path: Path
) -> None:
    a, b = await two_instances_one_store(start_instance, tmp_path)
    _clinician, _surgeon, consult = await active_consult(clients, a, b)
    ids = []
    for content in (PNG, JPEG):  # as earlier versions stored them: under A's var dir, by id
        item = Attachment(
            id=new_id(),
            consult_id=consult["id"],
            filename="cu.png",
            content_type="image/png",
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            uploader_id=consult["requester"]["id"],
            created_at=utcnow(),
        )
        legacy = attachments.legacy_path(a.services, item)
        legacy.parent.mkdir(parents=True, exist_ok=True)
        legacy.write_bytes(content)
        async with a.services.db.session() as session, session.begin():
            session.add(item)
        ids.append(item.id)
    url = f"/api/consults/{consult['id']}/attachments/"
    async with await http(b, "xanhpon.surgeon") as on_b, await http(a, "xanhpon.surgeon") as on_a:
        async with on_b.get(url + ids[0]) as resp:
            assert resp.status == 404  # only A has it, until it is moved
            assert (await resp.json())["error"]["message"] == "the file of this attachment is missing"
        async with on_a.get(url + ids[0]) as resp:  # read on A: moved into the store on the way
            assert resp.status == 200 and await resp.read() == PNG
        assert await attachments.adopt_files(a.services) == 1  # what a start does with the rest
        assert not (tmp_path / "var-a" / "attachments" / consult["id"]).exists() or not any(
            (tmp_path / "var-a" / "attachments" / consult["id"]).iterdir()
        )
        for attachment_id, content in zip(ids, (PNG, JPEG), strict=True):
            async with on_b.get(url + attachment_id) as resp:
                assert resp.status == 200 and await resp.read() == content


async def test_readyz_fails_while_the_blob_store_cannot_be_written(
    start_instance: StartInstance, clients, tmp_path: Path
) -> None:
    blob_dir = tmp_path / "mnt" / "blobs"
    instance = await start_instance(BLOB_DIR=str(blob_dir))
    _clinician, _surgeon, consult = await active_consult(clients, instance, instance)
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{instance.url}/readyz") as resp:
            assert resp.status == 200 and (await resp.json())["checks"]["blobs"] == "ok"
        # The volume goes away and something else is in its place: nothing can be written there.
        (tmp_path / "mnt").rename(tmp_path / "mnt-gone")
        (tmp_path / "mnt").write_text("not a folder")
        async with client.get(f"{instance.url}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 503, body
            assert body["checks"]["blobs"].startswith("unavailable") and body["checks"]["redis"] == "ok"
        async with await http(instance, "bavi.clinician") as clinician:
            form = aiohttp.FormData()
            form.add_field("file", PNG, filename="xquang.png")
            async with clinician.post(f"/api/consults/{consult['id']}/attachments", data=form) as resp:
                assert resp.status == 503 and (await resp.json())["error"]["code"] == "unavailable"
        (tmp_path / "mnt").unlink()
        (tmp_path / "mnt-gone").rename(tmp_path / "mnt")
        async with client.get(f"{instance.url}/readyz") as resp:
            assert resp.status == 200
