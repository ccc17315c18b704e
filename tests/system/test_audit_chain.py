"""The tamper-evident audit trail: `python -m server verify-audit` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import insert, select, text

from server.records import audit, chain, consults, migrate, notes
from server.records.models import AuditEntry, Consult, Database, Note, User, new_id, utcnow
from server.runtime import demo
from tests.conftest import PASSWORD, Client, StartInstance, database_backends, fresh_postgres_database, login
from tests.system.test_rtc import active_consult

ROOT = Path(__file__).resolve().parent.parent.parent


def verify_audit(database_url: str, tmp_path: Path, **settings: str) -> tuple[int, str]:
    """The command, as an operator runs it (with the instance's `BLOB_DIR`, say)."""
    env = {**os.environ, "DATABASE_URL": database_url, "TELEROUNDS_VAR_DIR": str(tmp_path / "cli"), **settings}
    result = subprocess.run(
        [sys.executable, "-m", "server", "verify-audit"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    return result.returncode, (result.stdout + result.stderr).strip()


async def report(database_url: str) -> chain.Report:
    db = Database(database_url)
    try:
        return await chain.verify(db)
    finally:
        await db.close()


async def execute(database_url: str, sql: str, **params: object) -> None:
    db = Database(database_url)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(text(sql), params)
    finally:
        await db.close()


async def test_writes_on_two_instances_at_once_keep_one_chain_and_an_altered_note_is_named(
    start_instance: StartInstance, clients, any_database_url: str, tmp_path: Path
) -> None:
    a = await start_instance(database=any_database_url)
    b = await start_instance(database=any_database_url)
    clinician, surgeon, consult = await active_consult(clients, a, b)
    token = await login(b.url, "xanhpon.surgeon")

    async def write(client: Client, n: int) -> None:
        for i in range(6):
            ack = await client.call(
                "note:add",
                {"consult_id": consult["id"], "op_id": f"c-{n}-{i}", "section": "plan", "text": f"ghi chú {n}-{i}"},
            )
            assert ack["ok"], ack

    async def read(instance_url: str) -> None:  # each read is an audit entry
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            for _ in range(6):
                async with http.get(f"{instance_url}/api/consults/{consult['id']}") as resp:
                    assert resp.status == 200

    await asyncio.gather(write(clinician, 0), write(surgeon, 1), read(a.url), read(b.url))
    ack = await surgeon.call(
        "consult:end", {"consult_id": consult["id"], "outcome": "treated_locally", "summary": "Điều trị tại chỗ"}
    )
    assert ack["ok"], ack

    db = Database(any_database_url)
    try:
        async with db.session() as session:
            seqs = list(await session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
            actions = list(await session.scalars(select(AuditEntry.action)))
            note = (await session.scalars(select(Note).where(Note.consult_id == consult["id"]).limit(1))).one()
    finally:
        await db.close()
    assert seqs == list(range(1, len(seqs) + 1))  # no fork, no gap
    assert actions.count("note.add") == 12 and actions.count("consult.end") == 1
    assert actions.count("consult.read") >= 12

    code, said = verify_audit(any_database_url, tmp_path)
    assert (code, said) == (0, f"audit trail intact, {len(seqs)} entries")

    await execute(any_database_url, "UPDATE notes SET text = 'đã sửa' WHERE id = :id", id=note.id)
    code, said = verify_audit(any_database_url, tmp_path)
    assert code == 1, said
    assert said.startswith(f"audit trail broken: note {note.id} was altered: it no longer matches entry "), said
    assert "note.add" in said


async def test_an_altered_or_removed_audit_entry_is_named(any_database_url: str) -> None:
    db = Database(any_database_url)
    try:
        async with db.session() as session:
            users = {u.username: u for u in await session.scalars(select(User))}
        clinician = users["bavi.clinician"]
        for n in range(5):
            await audit.record(db, clinician.id, "consult.read", "consult", f"c{n}", "10.0.0.1", f"n={n}")
        consult, _ = await consults.create(
            db,
            op_id="r-1",
            requester_id=clinician.id,
            hospital_id=clinician.hospital_id,
            specialty="surgery",
            urgency="routine",
            patient={"ref": "BV-1", "summary": "Đau bụng"},
            named_specialist_id=None,
        )
        first, _ = await notes.add(
            db, consult_id=consult.id, op_id="n-1", section="history", text="Đau 2 ngày", author_id=clinician.id
        )
        await notes.add(
            db,
            consult_id=consult.id,
            op_id="n-2",
            section="history",
            text="Đau 3 ngày",
            author_id=clinician.id,
            amends=first.id,
        )
    finally:
        await db.close()
    assert await report(any_database_url) == chain.Report(7, None)

    async def entry(seq: int) -> AuditEntry:
        db = Database(any_database_url)
        try:
            async with db.session() as session:
                return (await session.scalars(select(AuditEntry).where(AuditEntry.seq == seq))).one()
        finally:
            await db.close()

    third = await entry(3)
    await execute(any_database_url, "UPDATE audit_log SET detail = 'n=9' WHERE seq = 3")
    at = third.at.isoformat(timespec="microseconds")
    assert (await report(any_database_url)).problem == f"entry 3 (id {third.id}, {at}, consult.read) was altered"
    await execute(any_database_url, "UPDATE audit_log SET detail = 'n=2' WHERE seq = 3")  # put back
    assert (await report(any_database_url)).intact

    await execute(any_database_url, "DELETE FROM audit_log WHERE seq = 3")
    fourth = await entry(4)
    problem = (await report(any_database_url)).problem
    assert problem is not None and problem.startswith(f"entry 3 is missing: entry 4 (id {fourth.id}, "), problem

    await execute(any_database_url, "DELETE FROM audit_log WHERE seq >= 4")  # every trace after it too
    problem = (await report(any_database_url)).problem
    assert problem == "the last entries are missing: the chain ends at entry 2, its head at 7", problem


@pytest.mark.parametrize("backend", database_backends())
async def test_the_migration_chains_what_an_earlier_database_holds(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url, drop = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", None
    else:
        url, drop = await fresh_postgres_database(os.environ["TEST_DATABASE_URL"])
    db = Database(url)
    try:
        await migrate.upgrade(db, "0011")
        await demo.seed(db, PASSWORD, history=False)
        async with db.engine.begin() as connection:
            clinician = (await connection.execute(select(User).where(User.username == "bavi.clinician"))).one()
            consult_id, now = new_id(), utcnow()
            await connection.execute(
                insert(Consult.__table__).values(
                    id=consult_id,
                    kind="consult",
                    op_id="o",
                    status="ended",
                    specialty="surgery",
                    urgency="routine",
                    patient={"ref": "BV-2"},
                    requester_id=clinician.id,
                    hospital_id=clinician.hospital_id,
                    created_at=now,
                    ended_at=now,
                    outcome="transfer",
                    summary="Chuyển tuyến",
                    ended_by_id=clinician.id,
                    version=3,
                    note_seq=1,
                    note_bytes=4,
                    demo=False,
                )
            )
            await connection.execute(
                insert(Note.__table__).values(
                    id=new_id(),
                    consult_id=consult_id,
                    seq=1,
                    op_id="n",
                    section="plan",
                    text="Mổ",
                    author_id=clinician.id,
                    created_at=now,
                )
            )
            read = {"at": now, "actor_id": clinician.id, "action": "consult.read", "target_type": "consult"}
            reads = [{**read, "id": new_id(), "target_id": consult_id, "address": "", "detail": ""} for _ in range(3)]
            await connection.execute(insert(AuditEntry.__table__), reads)
        await migrate.upgrade(db)
        assert await chain.verify(db) == chain.Report(3 + 2, None)  # the reads, the note, the outcome
    finally:
        await db.close()
        if drop is not None:
            await drop()
