"""Real parts only: a real redis-server, real databases, real aiohttp servers, real Socket.IO clients."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import socketio
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from server.records import migrate
from server.records.models import Database
from server.runtime import demo
from server.runtime.app import create_app, server_options
from server.runtime.looplag import LoopLag
from server.runtime.redis_process import RedisProcess, free_port
from server.runtime.services import Services, connect
from server.runtime.settings import load_settings, normalize_database_url

SECRET = "test-secret-key-0123456789abcdef"
PASSWORD = "demo"
# The patient's consent a request carries (a routine or urgent request is refused without it:
# server/policy/consent.py): given by the patient, aloud, to the consult and its recording.
CONSENT: dict[str, Any] = {"given_by": "patient", "method": "verbal", "scopes": ["consult", "recording"]}
# No request may hold an instance's event loop longer than this (issue 18): every other user of
# the instance waits that long. Measured by server/runtime/looplag.py, machine load left out.
LOOP_LAG_BOUND_S = 0.05


@asynccontextmanager
async def loop_held_under(bound_s: float = LOOP_LAG_BOUND_S) -> AsyncIterator[LoopLag]:
    """Fails the test when the event loop (the instances' under test, in this process) was held
    longer than `bound_s` at once while the block ran."""
    async with LoopLag() as lag:
        yield lag
    assert lag.worst_s <= bound_s, f"the event loop was held for {lag.worst_ms} ms (at most {bound_s * 1000:.0f})"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server for the whole run: TEST_REDIS_URL if given, else a private child process."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    process = RedisProcess(tmp_path_factory.mktemp("redis"))
    process.start()
    yield process.url
    process.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with the demo data, copied for each test (argon2 is slow on purpose)."""
    path = tmp_path_factory.mktemp("db") / "template.db"

    async def build() -> None:
        db = Database(normalize_database_url(f"sqlite:///{path}"))
        await migrate.upgrade(db)
        await demo.seed(db, PASSWORD, history=False)
        await db.close()

    asyncio.run(build())
    return path


@pytest.fixture
def database_url(seeded_sqlite: Path, tmp_path: Path) -> str:
    target = tmp_path / "telerounds.db"
    shutil.copy(seeded_sqlite, target)
    return normalize_database_url(f"sqlite:///{target}")


async def fresh_postgres_database(admin_url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A new empty PostgreSQL database next to `admin_url`'s, and a function that drops it."""
    admin_url = normalize_database_url(admin_url)
    name = f"telerounds_test_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    url = admin_url.rsplit("/", 1)[0] + "/" + name

    async def drop() -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    return url, drop


def database_backends() -> list[str]:
    """SQLite always; PostgreSQL too when TEST_DATABASE_URL names one (CI sets it when one answers)."""
    return ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]


@pytest.fixture(params=database_backends())
async def any_database_url(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[str]:
    """A seeded database on each backend under test."""
    if request.param == "sqlite":
        yield database_url
        return
    url, drop = await fresh_postgres_database(os.environ["TEST_DATABASE_URL"])
    db = Database(url)
    await migrate.upgrade(db)
    await demo.seed(db, PASSWORD, history=False)
    await db.close()
    yield url
    await drop()


class Instance:
    """One telerounds server running in this process on a free port."""

    def __init__(self, services: Services, runner: web.AppRunner, url: str) -> None:
        self.services = services
        self.runner = runner
        self.url = url
        self.tokens: dict[str, str] = {}  # see `token_of`

    async def stop(self) -> None:
        await self.runner.cleanup()


StartInstance = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def start_instance(redis_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[StartInstance]:
    """Start instances sharing one Redis and one database (unless given their own); all are
    stopped after the test."""
    started: list[Instance] = []

    async def start(
        database: str | None = None, port: int | None = None, redis: str | None = None, **env: str
    ) -> Instance:
        own_redis_url = redis or redis_url
        settings = load_settings(
            {
                "TELEROUNDS_VAR_DIR": str(tmp_path / "var"),
                "REDIS_URL": own_redis_url,
                "DATABASE_URL": database or database_url,
                "SECRET_KEY": SECRET,
                "TELEROUNDS_DEMO_PASSWORD": PASSWORD,
                **env,
            }
        )
        services = connect(settings, own_redis_url)
        runner = web.AppRunner(create_app(services, own_redis_url), shutdown_timeout=2, **server_options(settings))
        await runner.setup()
        port = port or free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        instance = Instance(services, runner, f"http://127.0.0.1:{port}")
        started.append(instance)
        return instance

    yield start
    for instance in reversed(started):
        await asyncio.wait_for(instance.stop(), 15)


@pytest.fixture
async def instance(start_instance: StartInstance) -> Instance:
    return await start_instance()


@pytest.fixture
async def two_instances(start_instance: StartInstance) -> tuple[Instance, Instance]:
    return await start_instance(), await start_instance()


async def login(base_url: str, username: str, password: str = PASSWORD) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/login", json={"username": username, "password": password}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return str(body["token"])


async def token_of(instance: Instance, username: str) -> str:
    """The token `username` signed in with on `instance` in this test, signing in the first time:
    their HTTP requests keep one token, as the browser does (argon2 is slow on purpose, and a
    sign-in per request was a good part of some tests' time). Tests of signing in call `login`."""
    if username not in instance.tokens:
        instance.tokens[username] = await login(instance.url, username)
    return instance.tokens[username]


class Client:
    """A real python-socketio client that records every event it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[Any]] = {}
        self.sio.on("*", self._record)

    async def _record(self, event: str, *args: Any) -> None:
        self.queue(event).put_nowait(args[0] if len(args) == 1 else list(args))

    def queue(self, event: str) -> asyncio.Queue[Any]:
        return self.events.setdefault(event, asyncio.Queue())

    async def connect(
        self, base_url: str, token: str | None, namespace: str = "/", headers: dict[str, str] | None = None
    ) -> None:
        auth = {"token": token} if token is not None else None
        self.sio.on("*", self._record, namespace=namespace)
        try:
            await self.sio.connect(
                base_url, auth=auth, namespaces=[namespace], transports=["websocket"], wait_timeout=5, headers=headers
            )
        except socketio.exceptions.ConnectionError:
            # A refused client keeps its engine.io connection open; close it, as a browser would.
            await self.sio.eio.disconnect(abort=True)
            raise

    async def call(self, event: str, data: Any = None, namespace: str = "/") -> Any:
        return await self.sio.call(event, data, namespace=namespace, timeout=5)

    async def next(self, event: str, within: float = 5.0) -> Any:
        return await asyncio.wait_for(self.queue(event).get(), within)

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    """Open connected clients: `await clients(instance, "bavi.clinician")`; all closed after the test."""
    opened: list[Client] = []

    async def open_client(instance: Instance, username: str, namespace: str = "/") -> Client:
        client = Client()
        opened.append(client)
        await client.connect(instance.url, await login(instance.url, username), namespace)
        return client

    yield open_client
    for client in opened:
        await asyncio.wait_for(client.close(), 15)


async def until(client: Client, event: str, check: Callable[[Any], bool], within: float = 5.0) -> Any:
    """The next `event` payload for which `check` holds, skipping earlier ones."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError(f"no {event} matching the check within {within} s")
        payload = await client.next(event, remaining)
        if check(payload):
            return payload


@functools.cache
def password_hash() -> str:
    """One argon2 hash of PASSWORD for every user a test adds, as the demo users share one (argon2
    is slow on purpose: a hash per added user was a good part of some tests' setup)."""
    from server.policy.auth import hash_password

    return hash_password(PASSWORD)


async def add_user(
    database_url: str, username: str, role: str, hospital_id: str, specialties: tuple[str, ...] = ()
) -> None:
    """Another user for a test (password PASSWORD)."""
    from server.records.models import User

    db = Database(database_url)
    try:
        async with db.session() as session, session.begin():
            session.add(
                User(
                    username=username,
                    name=username,
                    role=role,
                    hospital_id=hospital_id,
                    specialties=list(specialties),
                    password_hash=password_hash(),
                    active=True,
                )
            )
    finally:
        await db.close()
