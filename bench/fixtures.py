"""The people and consults of the relay benchmarks, written straight into a fresh database.

Room i is an active consult between clinician `bench.c<i>` (Ba Vì) and specialist `bench.s<i>`
(Xanh Pôn), so both may join its call. `bench.idle<i>` are clinicians of a commune station with
no consults, for the idle-connection figures. Nobody logs in: argon2 is slow on purpose, so the
bench issues tokens itself with the instances' SECRET_KEY.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from bench.cluster import PASSWORD, SECRET_KEY
from server.policy.auth import issue_token
from server.records import migrate
from server.records.models import Consult, Database, User
from server.runtime import demo
from server.runtime.settings import normalize_database_url

TOKEN_TTL_S = 12 * 3600


@dataclass(frozen=True)
class Room:
    consult_id: str
    clinician_token: str
    specialist_token: str


@dataclass(frozen=True)
class Fixtures:
    database: Path  # a prepared SQLite file; copy it for each service
    rooms: list[Room]
    idle_tokens: list[str]

    def database_url(self, workdir: Path) -> str:
        """A private copy of the prepared database, so no two services share one file."""
        copy = Path(tempfile.mkdtemp(prefix="telerounds-bench-db-", dir=workdir)) / "telerounds.db"
        shutil.copy(self.database, copy)
        return normalize_database_url(f"sqlite:///{copy}")


async def _populate(url: str, rooms: int, idle: int) -> tuple[list[tuple[str, str, str]], list[str]]:
    db = Database(url)
    await migrate.upgrade(db)
    await demo.seed(db, PASSWORD, history=False)
    now = datetime.now(UTC)
    users: list[dict[str, object]] = []
    consults: list[dict[str, object]] = []
    pairs: list[tuple[str, str, str]] = []
    for i in range(rooms):
        clinician, specialist, consult = f"bench-c{i}", f"bench-s{i}", f"bench-consult-{i}"
        users.append(_user(clinician, f"bench.c{i}", "clinician", "bavi-dgh", []))
        users.append(_user(specialist, f"bench.s{i}", "specialist", "xanhpon", ["surgery"]))
        consults.append(
            {
                "id": consult,
                "kind": "consult",
                "op_id": f"bench-{i}",
                "status": "active",
                "specialty": "surgery",
                "urgency": "routine",
                "patient": {"ref": f"BENCH-{i}", "summary": "benchmark"},
                "requester_id": clinician,
                "hospital_id": "bavi-dgh",
                "specialist_id": specialist,
                "created_at": now,
                "started_at": now,
                "version": 3,
            }
        )
        pairs.append((consult, clinician, specialist))
    idle_ids = [f"bench-idle{i}" for i in range(idle)]
    users += [_user(uid, f"bench.idle{i}", "clinician", "tyt-tanlinh", []) for i, uid in enumerate(idle_ids)]
    async with db.session() as session, session.begin():
        await session.execute(insert(User), users)
        if consults:
            await session.execute(insert(Consult), consults)
    await db.close()
    return pairs, idle_ids


def _user(uid: str, username: str, role: str, hospital: str, specialties: list[str]) -> dict[str, object]:
    # Not a usable password hash: these accounts get their tokens from the bench, never log in.
    return {
        "id": uid,
        "username": username,
        "name": username,
        "role": role,
        "hospital_id": hospital,
        "specialties": specialties,
        "password_hash": "bench-no-login",
        "active": True,
    }


def prepare(workdir: Path, rooms: int, idle: int) -> Fixtures:
    path = workdir / "fixtures.db"
    pairs, idle_ids = asyncio.run(_populate(normalize_database_url(f"sqlite:///{path}"), rooms, idle))

    def token(uid: str) -> str:
        return issue_token(SECRET_KEY, uid, TOKEN_TTL_S)

    return Fixtures(
        database=path,
        rooms=[Room(consult, token(c), token(s)) for consult, c, s in pairs],
        idle_tokens=[token(uid) for uid in idle_ids],
    )
