"""Faults: an instance killed with -9, Redis restarted empty, the database unavailable, a deaf
pub/sub listener. Real processes only (server instances as `python -m server` children, real
redis-server processes), loopback only, each test bounded in time. Figures are printed, not asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import socketio
from aiohttp import web
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from server.live.rooms import Rooms
from server.policy.auth import hash_password, issue_token
from server.records import consults
from server.records.models import Database, Note, User
from server.runtime.app import create_app
from server.runtime.redis_process import RedisProcess, free_port
from server.runtime.services import connect
from server.runtime.settings import load_settings, normalize_database_url
from tests.conftest import PASSWORD, SECRET, Client, Instance, StartInstance, login, until
from tests.system.netem import Netem
from tests.system.test_consults import request
from tests.system.test_network import SDP, ReconnectingClient, percentile
from tests.system.test_notes import note
from tests.system.test_rtc import active_consult

ROOT = Path(__file__).resolve().parent.parent.parent
WITHIN = 30.0  # a generous bound for anything that waits on recovery


# Server instances as child processes, as in tests/system/test_durability.py.


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    url: str
    log: IO[bytes]

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)  # no shutdown, no flush
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
async def children(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Child]]]:
    """Start `python -m server` children on free ports; all stopped after the test."""
    started: list[Child] = []

    async def start(redis_url: str, database_url: str, **env: str) -> Child:
        port = free_port()
        log = (tmp_path / f"server-{port}.log").open("wb")
        environment = {
            **os.environ,
            "PORT": str(port),
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET,
            "TELEROUNDS_DEMO_PASSWORD": PASSWORD,
            "TELEROUNDS_VAR_DIR": str(tmp_path / "var"),
            **env,
        }
        process = _spawn(environment, log)
        child = Child(process, f"http://127.0.0.1:{port}", log)
        started.append(child)
        await until_ready(child.url, lambda status: status == 200, within=60, process=process)
        return child

    yield start
    for child in started:
        child.stop()


def _spawn(environment: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=environment, stdout=log, stderr=log)


async def readiness(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(5)) as resp:
        return resp.status, await resp.json()


async def until_ready(
    url: str,
    check: Callable[[int], bool],
    within: float = WITHIN,
    process: subprocess.Popen[bytes] | None = None,
    body_check: Callable[[dict[str, Any]], bool] = lambda body: True,
) -> dict[str, Any]:
    """Poll `/readyz` until its status (and body) pass the checks; the last body."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            status, body = await readiness(url)
            if check(status) and body_check(body):
                return body
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url}/readyz did not reach the expected state within {within} s")


async def add_people(database_url: str, role: str, hospital_id: str, count: int, specialty: str = "") -> list[str]:
    """`count` more users (one password hash for all: argon2 is slow on purpose); their ids."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    password_hash = hash_password(PASSWORD)
    db = Database(database_url)
    try:
        async with db.session() as session, session.begin():
            for n, user_id in enumerate(ids):
                session.add(
                    User(
                        id=user_id,
                        username=f"{role}.{n}.{user_id[:6]}",
                        name=f"{role} {n}",
                        role=role,
                        hospital_id=hospital_id,
                        specialties=[specialty] if specialty else [],
                        password_hash=password_hash,
                        active=True,
                    )
                )
    finally:
        await db.close()
    return ids


async def user_id_of(database_url: str, username: str) -> str:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return str(await session.scalar(select(User.id).where(User.username == username)))
    finally:
        await db.close()


def token_for(user_id: str) -> str:
    return issue_token(SECRET, user_id, 3600)


async def call(client: Client, event: str, data: Any, wait_s: float = WITHIN) -> Any:
    return await client.sio.call(event, data, timeout=wait_s)


# 1. kill -9 one of two instances during 50 active consults with notes being written.


@dataclass
class Side:
    """One participant of a consult: who, where, and what the server acknowledged to them."""

    user_id: str
    role: str
    url: str
    client: Client = field(default_factory=Client)
    consult_id: str = ""
    peer_id: str = ""
    online: asyncio.Event = field(default_factory=asyncio.Event)
    acked: dict[str, str] = field(default_factory=dict)  # op_id → note id
    resumed_s: float | None = None
    old_peer_id: str = ""

    async def connect(self) -> None:
        await self.client.connect(self.url, token_for(self.user_id))
        self.online.set()


PAIRS = 50
NOTES_EACH = 4


async def write_notes(side: Side) -> None:
    """Write notes like a client that keeps its ops until acknowledged: an op that got no answer
    (the instance died under it) is sent again, with the same op_id, once connected again."""
    for k in range(NOTES_EACH):
        op_id = f"{side.role}-{k}"
        payload = {"consult_id": side.consult_id, "op_id": op_id, "section": "discussion", "text": op_id}
        while True:
            await side.online.wait()
            try:
                ack = await call(side.client, "note:add", payload, wait_s=5)
            except socketio.exceptions.SocketIOError:  # disconnected, or no answer in time
                await asyncio.sleep(0.1)
                continue
            if ack["ok"]:
                side.acked[op_id] = ack["note"]["id"]
                break
            assert ack["error"]["code"] in ("unavailable", "rate_limited"), ack
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.2)  # someone typing


async def resume(side: Side, survivor_url: str, killed_at: float) -> None:
    """What a client does after its instance died: connect to another, read `session:state`,
    join its consult's call again and offer to the peers already there."""
    side.online.clear()
    old = side.client
    side.client, side.url = Client(), survivor_url
    await side.client.connect(survivor_url, token_for(side.user_id))
    state = await side.client.next("session:state", WITHIN)
    mine = [c for c in state["consults"] if c["id"] == side.consult_id]
    assert mine and mine[0]["status"] == "active", state["consults"]
    joined = await call(side.client, "consult:join", {"consult_id": side.consult_id})
    assert joined["ok"] is True, joined
    side.old_peer_id, side.peer_id = side.peer_id, joined["peer_id"]
    side.resumed_s = time.monotonic() - killed_at
    side.online.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(old.sio.eio.disconnect(abort=True), 2)


async def test_kill_9_of_one_instance_loses_no_acknowledged_note_and_every_client_resumes(
    children, redis_url: str, database_url: str
) -> None:
    env = {"PRESENCE_TTL_S": "3", "RECONNECT_GRACE_S": "2", "OFFER_TIMEOUT_ROUTINE_S": "120"}
    a = await children(redis_url, database_url, **env)
    b = await children(redis_url, database_url, **env)
    clinician_ids = await add_people(database_url, "clinician", "bavi-dgh", PAIRS)
    specialist_ids = await add_people(database_url, "specialist", "xanhpon", PAIRS, "surgery")
    # Every consult has one side on each instance: the side on `a` will have to come back.
    pairs = [
        (
            Side(clinician_ids[i], "clinician", a.url if i % 2 else b.url),
            Side(specialist_ids[i], "specialist", b.url if i % 2 else a.url),
        )
        for i in range(PAIRS)
    ]
    sides = [side for pair in pairs for side in pair]
    gate = asyncio.Semaphore(10)

    async def limited(work: Awaitable[None]) -> None:
        async with gate:
            await work

    async def open_consult(clinician: Side, specialist: Side) -> None:
        await specialist.client.next("session:state", WITHIN)
        asked = await call(clinician.client, "consult:request", request(specialist_id=specialist.user_id))
        assert asked["ok"] is True and asked["consult"]["status"] == "offered", asked
        consult_id = asked["consult"]["id"]
        await until(specialist.client, "consult:offer", lambda o: o["consult"]["id"] == consult_id, WITHIN)
        accepted = await call(specialist.client, "consult:accept", {"consult_id": consult_id})
        assert accepted["ok"] is True, accepted
        for side in (clinician, specialist):  # the clinician joins first; the specialist offers
            side.consult_id = consult_id
            joined = await call(side.client, "consult:join", {"consult_id": consult_id})
            assert joined["ok"] is True, joined
            side.peer_id = joined["peer_id"]

    try:
        await asyncio.gather(*(limited(side.connect()) for side in sides))
        await asyncio.gather(*(limited(open_consult(*pair)) for pair in pairs))
        writers = asyncio.gather(*(write_notes(side) for side in sides))

        # Kill `a` while notes are being written.
        deadline = time.monotonic() + WITHIN
        while sum(len(side.acked) for side in sides) < len(sides) * NOTES_EACH // 4:
            assert time.monotonic() < deadline, "notes are not being written"
            await asyncio.sleep(0.05)
        killed_at = time.monotonic()
        a.kill()
        moved = [side for side in sides if side.url == a.url]
        # All at once, as clients whose connection just broke do.
        await asyncio.gather(*(resume(side, b.url, killed_at) for side in moved))

        # Each call renegotiates: the others hear of the peer that came back, and its offer reaches them.
        for clinician, specialist in pairs:
            back, stayed = (clinician, specialist) if clinician in moved else (specialist, clinician)
            await until(stayed.client, "consult:peer-joined", lambda p, back=back: p["peer_id"] == back.peer_id, WITHIN)
            offer = {"consult_id": back.consult_id, "to": stayed.peer_id, "data": {"type": "offer", "sdp": SDP}}
            assert await call(back.client, "rtc:signal", offer) == {"ok": True}
            await until(stayed.client, "rtc:signal", lambda m, back=back: m["from"] == back.peer_id, WITHIN)
        await asyncio.wait_for(writers, WITHIN)

        # The dead instance's sockets lapse (PRESENCE_TTL_S): a peer left behind in a call is
        # shown reconnecting and then removed, so each call ends with exactly its two live peers.
        rooms_redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            rooms = Rooms(rooms_redis)
            deadline = time.monotonic() + WITHIN
            for clinician, specialist in pairs:
                wanted = {clinician.peer_id, specialist.peer_id}
                while {p.peer_id for p in await rooms.peers(f"consult:{clinician.consult_id}")} != wanted:
                    assert time.monotonic() < deadline, "a peer of the dead instance stayed in its call"
                    await asyncio.sleep(0.2)
        finally:
            await rooms_redis.aclose()
    finally:
        for side in sides:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(side.client.sio.eio.disconnect(abort=True), 5)

    # Every acknowledged note is in the record exactly once, the very note that was acknowledged.
    db = Database(database_url)
    try:
        async with db.session() as session:
            stored = list((await session.scalars(select(Note))).all())
    finally:
        await db.close()
    for clinician, specialist in pairs:
        mine = [n for n in stored if n.consult_id == clinician.consult_id]
        acked = {**clinician.acked, **specialist.acked}
        assert len(acked) == 2 * NOTES_EACH
        assert sorted(n.op_id for n in mine) == sorted(acked)  # each op once, nothing unacknowledged
        assert {n.op_id: n.id for n in mine} == acked
        assert sorted(n.seq for n in mine) == list(range(1, 2 * NOTES_EACH + 1))
    resumed = [side.resumed_s for side in moved if side.resumed_s is not None]
    assert len(resumed) == PAIRS
    print(
        f"\nkill -9 of 1 of 2 instances, {PAIRS} active consults: {len(resumed)} clients resumed on the other; "
        f"resume (kill → session:state → consult:join acked) p50 {percentile(resumed, 0.5):.2f} s, "
        f"p95 {percentile(resumed, 0.95):.2f} s; {len(stored)} notes, each acknowledged one exactly once"
    )


# 2. Redis killed and restarted empty.


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, which it may kill: not the one other tests share."""
    process = RedisProcess(tmp_path / "redis")
    process.start()
    yield process
    process.stop()


async def test_redis_restarted_empty_is_rebuilt_and_nothing_acknowledged_is_lost(
    children, own_redis: RedisProcess, database_url: str
) -> None:
    env = {"OFFER_TIMEOUT_ROUTINE_S": "120", "OFFER_TIMEOUT_URGENT_S": "120"}
    a = await children(own_redis.url, database_url, **env)
    b = await children(own_redis.url, database_url, **env)
    ids = {
        name: await user_id_of(database_url, name) for name in ("bavi.clinician", "xanhpon.surgeon", "xanhpon.obgyn")
    }
    clinician, surgeon, obgyn = ReconnectingClient(), ReconnectingClient(), ReconnectingClient()
    restarted = RedisProcess(own_redis.workdir, own_redis.port)  # the same address, empty
    try:
        await clinician.connect(a.url, token_for(ids["bavi.clinician"]))
        await surgeon.connect(b.url, token_for(ids["xanhpon.surgeon"]))
        await obgyn.connect(a.url, token_for(ids["xanhpon.obgyn"]))
        for client in (clinician, surgeon, obgyn):
            await client.next("session:state", WITHIN)

        # An active consult with notes, a queued one (no ICU specialist online), an offered one.
        active = (await call(clinician, "consult:request", request()))["consult"]["id"]
        await until(surgeon, "consult:offer", lambda o: o["consult"]["id"] == active, WITHIN)
        assert (await call(surgeon, "consult:accept", {"consult_id": active}))["ok"] is True
        assert (await call(clinician, "consult:join", {"consult_id": active}))["ok"] is True
        assert (await call(surgeon, "consult:join", {"consult_id": active}))["ok"] is True
        acked = [(await call(clinician, "note:add", note(active, f"trước {i}")))["note"] for i in range(3)]
        queued = (await call(clinician, "consult:request", request("icu", "urgent")))["consult"]
        assert queued["status"] == "queued" and queued["queue_position"] == 1
        offered = (await call(clinician, "consult:request", request("obstetrics", specialist_id=ids["xanhpon.obgyn"])))[
            "consult"
        ]
        assert offered["status"] == "offered"
        await until(obgyn, "consult:offer", lambda o: o["consult"]["id"] == offered["id"], WITHIN)

        assert own_redis.process is not None
        own_redis.process.kill()
        own_redis.process.wait()
        for child in (a, b):
            down = await until_ready(child.url, lambda status: status == 503)
            assert down["checks"]["redis"].startswith("unavailable"), down
        during = note(active, "trong lúc Redis hỏng")
        refused = await call(clinician, "note:add", during)
        assert refused["ok"] is False and refused["error"]["code"] == "unavailable", refused
        # Someone connecting meanwhile is refused with `unavailable`, not left without an answer.
        assert await refused_connect(a.url, token_for(ids["xanhpon.obgyn"])) == "unavailable"

        restarted.start()
        for child in (a, b):
            await until_ready(child.url, lambda status: status == 200)

        # The instances close their connections; the clients come back by themselves and get
        # their state rebuilt from the database.
        state = await clinician.next("session:state", WITHIN)
        by_id = {c["id"]: c for c in state["consults"]}
        assert by_id[active]["status"] == "active"
        assert by_id[queued["id"]]["status"] == "queued" and by_id[queued["id"]]["queue_position"] == 1
        assert by_id[offered["id"]]["status"] in ("queued", "offered")
        surgeon_state = await surgeon.next("session:state", WITHIN)
        assert surgeon_state["presence"]["status"] == "busy" and surgeon_state["presence"]["online"] is True
        # Offered again: in the snapshot if that came first, else as an event after it.
        obgyn_state = await obgyn.next("session:state", WITHIN)
        pending = [o for o in obgyn_state["offers"] if o["consult"]["id"] == offered["id"]]
        again = (
            pending[0]
            if pending
            else await until(obgyn, "consult:offer", lambda o: o["consult"]["id"] == offered["id"], WITHIN)
        )
        assert again["consult"]["status"] == "offered"

        db = Database(database_url)
        try:
            lines = [e.kind for e in await consults.timeline(db, offered["id"])]
        finally:
            await db.close()
        assert lines.count("requeued") == 1, lines  # requeued once, though two instances recovered
        live = aioredis.Redis.from_url(own_redis.url, decode_responses=True)
        try:
            assert await live.sismember("in-consult", ids["xanhpon.surgeon"])
            assert await live.zrank("queue:icu", queued["id"]) == 0
        finally:
            await live.aclose()

        # The call works again once both join again, across the two instances.
        back = await call(clinician, "consult:join", {"consult_id": active})
        assert back["ok"] is True and back["peers"] == []  # the call's old state is gone with Redis
        joined = await call(surgeon, "consult:join", {"consult_id": active})
        assert [p["peer_id"] for p in joined["peers"]] == [back["peer_id"]]
        await until(clinician, "consult:peer-joined", lambda p: p["peer_id"] == joined["peer_id"], WITHIN)
        offer = {"consult_id": active, "to": back["peer_id"], "data": {"type": "offer", "sdp": SDP}}
        assert await call(surgeon, "rtc:signal", offer) == {"ok": True}
        await until(clinician, "rtc:signal", lambda m: m["from"] == joined["peer_id"], WITHIN)

        # Nothing acknowledged was lost; the refused op goes through once retried.
        retried = await call(clinician, "note:add", during)
        assert retried["ok"] is True and retried["note"]["seq"] == 4, retried
        listed = (await call(surgeon, "note:list", {"consult_id": active}))["notes"]
        assert [n["id"] for n in listed] == [n["id"] for n in acked] + [retried["note"]["id"]]
        await until(surgeon, "note:added", lambda m: m["note"]["id"] == retried["note"]["id"], WITHIN)
    finally:
        for client in (clinician, surgeon, obgyn):
            await client.sio.shutdown()
        restarted.stop()


async def refused_connect(url: str, token: str) -> str:
    """The code a refused Socket.IO connect carries in its error's data."""
    sio = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    sio.on("connect_error", refusals.append)
    with contextlib.suppress(socketio.exceptions.ConnectionError):
        await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    await sio.eio.disconnect(abort=True)
    assert refusals, "the connect was neither accepted nor refused"
    return str(refusals[0]["data"]["code"])


# 3. The database unavailable.


class DatabaseOutage:
    """Make the database unusable for the service, then usable again.

    SQLite: another process holds the write lock beyond the busy timeout (a backup tool, a
    stuck migration): every write waits and fails, reads that must write (audited ones) too.
    PostgreSQL: the database stops accepting connections and its sessions are terminated.
    """

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.holder: sqlite3.Connection | None = None

    async def begin(self) -> None:
        if self.url.startswith("sqlite"):
            self.holder = sqlite3.connect(self.url.split(":///", 1)[1], isolation_level=None, timeout=10)
            self.holder.execute("BEGIN IMMEDIATE")
            return
        name = self.url.rsplit("/", 1)[1]
        await self._admin(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )

    async def end(self) -> None:
        if self.holder is not None:
            self.holder.execute("ROLLBACK")
            self.holder.close()
            self.holder = None
            return
        await self._admin(f'ALTER DATABASE "{self.url.rsplit("/", 1)[1]}" ALLOW_CONNECTIONS true')

    async def _admin(self, *statements: str) -> None:
        engine = create_async_engine(
            normalize_database_url(os.environ["TEST_DATABASE_URL"]), isolation_level="AUTOCOMMIT"
        )
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()


async def test_database_unavailable_refuses_writes_and_recovers(
    start_instance: StartInstance, clients, any_database_url: str
) -> None:
    instance = await start_instance(database=any_database_url)
    clinician, surgeon, consult = await active_consult(clients, instance, instance)
    first = (await clinician.call("note:add", note(consult["id"], "trước sự cố")))["note"]
    admin = {"Authorization": f"Bearer {await login(instance.url, 'admin')}"}
    reader = {"Authorization": f"Bearer {await login(instance.url, 'bavi.clinician')}"}
    hospital = {"name": "Trạm Y tế xã Tản Lĩnh", "level": "commune", "province": "hanoi", "province_name": "Hà Nội"}
    outage = DatabaseOutage(any_database_url)
    await outage.begin()
    try:
        down = await until_ready(instance.url, lambda status: status == 503)
        assert down["checks"]["database"].startswith("unavailable"), down
        assert down["checks"]["redis"] == "ok"
        during = note(consult["id"], "trong sự cố")

        async def http(method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
            async with aiohttp.ClientSession(headers=headers) as session:
                async with session.request(method, f"{instance.url}{path}", json=body) as resp:
                    return resp.status, await resp.json()

        # All at once: each waits out the busy timeout (SQLite) before it is refused.
        write, listed, created, read = await asyncio.gather(
            call(clinician, "note:add", during),
            call(surgeon, "note:list", {"consult_id": consult["id"]}),  # one socket's events run in turn
            http("POST", "/api/admin/hospitals", admin, hospital),
            http("GET", f"/api/consults/{consult['id']}", reader),  # an audited read
        )
        assert write["ok"] is False and write["error"]["code"] == "unavailable", write
        assert listed["ok"] is False and listed["error"]["code"] == "unavailable", listed
        for status, body in (created, read):
            assert status == 503 and body["error"]["code"] == "unavailable", (status, body)
    finally:
        await outage.end()

    await until_ready(instance.url, lambda status: status == 200)
    notes = (await clinician.call("note:list", {"consult_id": consult["id"]}))["notes"]
    assert [n["id"] for n in notes] == [first["id"]]  # nothing was stored that was refused
    retried = await clinician.call("note:add", during)
    assert retried["ok"] is True and retried["note"]["seq"] == 2, retried
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{instance.url}/api/admin/hospitals", json=hospital, headers=admin) as resp:
            assert resp.status == 201, await resp.text()
        async with session.get(f"{instance.url}/api/consults/{consult['id']}", headers=reader) as resp:
            assert resp.status == 200
            assert [n["seq"] for n in (await resp.json())["notes"]] == [1, 2]


# 4. A dead or deaf pub/sub listener.


async def test_readyz_reports_a_dead_pubsub_listener(instance: Instance) -> None:
    await until_ready(instance.url, lambda status: status == 200)
    assert instance.services.sio is not None
    manager = instance.services.sio.manager
    manager.thread.cancel()
    await asyncio.wait([manager.thread], timeout=5)
    body = await until_ready(instance.url, lambda status: status == 503, within=5)
    assert body["checks"] == {
        "redis": "ok",
        "database": "ok",
        "blobs": "ok",
        "pubsub": "unavailable: not receiving",
    }


@contextlib.asynccontextmanager
async def pubsub_through_a_link(redis_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Netem, str]]:
    """An instance whose Socket.IO pub/sub goes through a `Netem` link; the rest of it talks to
    Redis directly. Yields the link and the instance's URL."""
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    link = await Netem(redis_port, delay_s=0.0, loss=0.0).start()
    settings = load_settings(
        {
            "TELEROUNDS_VAR_DIR": str(tmp_path / "var"),
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET,
            "TELEROUNDS_DEMO_PASSWORD": PASSWORD,
        }
    )
    services = connect(settings, redis_url)
    runner = web.AppRunner(create_app(services, f"redis://127.0.0.1:{link.port}/0"), shutdown_timeout=2)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield link, f"http://127.0.0.1:{port}"
    finally:
        await asyncio.wait_for(runner.cleanup(), 20)
        await link.close()


async def test_a_deaf_pubsub_listener_is_reported_and_heals(redis_url: str, database_url: str, tmp_path: Path) -> None:
    """The listener's connection goes half-open (a partition: no error, no bytes): `/readyz`
    says so, and once the link is back the listener subscribes again by itself."""
    async with pubsub_through_a_link(redis_url, database_url, tmp_path) as (link, url):
        await until_ready(url, lambda status: status == 200)
        link.stall()
        body = await until_ready(url, lambda status: status == 503)
        assert body["checks"]["redis"] == "ok" and body["checks"]["pubsub"].startswith("unavailable"), body
        link.resume()
        await until_ready(url, lambda status: status == 200)


async def test_a_listener_whose_redis_vanished_subscribes_again_by_itself(
    redis_url: str, database_url: str, tmp_path: Path
) -> None:
    """The listener's connection goes silent for good (the far end vanished: no reset, no
    bytes) while new connections work: the silence is taken for a dead connection, and the
    listener subscribes again on a new one, with nobody restarting the instance."""
    async with pubsub_through_a_link(redis_url, database_url, tmp_path) as (link, url):
        await until_ready(url, lambda status: status == 200)
        link.blackhole()
        await until_ready(url, lambda status: status == 503)
        await until_ready(url, lambda status: status == 200, within=20)


# 5. `make run`: its embedded Redis dies.


def _children_of(pid: int) -> list[int]:
    """Child processes, whichever thread started them (the watchdog restarts Redis from its own)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end meanwhile
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


def _port_of(redis_pid: int) -> str:
    # redis-server sets its process title to "<path> 127.0.0.1:<port>".
    title = Path(f"/proc/{redis_pid}/cmdline").read_bytes().split(b"\0")[0]
    return title.rsplit(b":", 1)[1].split()[0].decode()


async def test_the_embedded_redis_comes_back_by_itself_and_the_live_state_is_rebuilt(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "PORT": str(port), "TELEROUNDS_VAR_DIR": str(tmp_path / "var")}
    environment["TELEROUNDS_DEMO_PASSWORD"] = PASSWORD
    for name in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY"):
        environment.pop(name, None)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = _spawn(environment, log)
        url = f"http://127.0.0.1:{port}"
        try:
            await until_ready(url, lambda status: status == 200, within=60, process=process)
            (first,) = _children_of(process.pid)
            redis_port = _port_of(first)
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + WITHIN
            while _children_of(process.pid) in ([], [first]):
                assert time.monotonic() < deadline, "the embedded redis-server was not started again"
                await asyncio.sleep(0.1)
            await until_ready(url, lambda status: status == 200)
            live = aioredis.Redis.from_url(f"redis://127.0.0.1:{redis_port}/0")
            try:
                deadline = time.monotonic() + WITHIN
                while not await live.exists("live:epoch"):  # the instance noticed and rebuilt
                    assert time.monotonic() < deadline, "the live state was not rebuilt"
                    await asyncio.sleep(0.1)
            finally:
                await live.aclose()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    output = log_path.read_text()
    assert "restarting it" in output
    assert output.count("live state rebuilt") == 2, output  # at the start, and after the restart
