"""`python -m server`: start one telerounds instance with embedded defaults.

Without REDIS_URL it starts its own redis-server child process; without DATABASE_URL it keeps
records in SQLite under var/. It brings the schema up to date and adds the demo data (on the
first start, with about three months of closed demo consults for the statistics).

`python -m server verify-audit` checks the tamper-evident audit trail instead (see `verify_audit`);
`python -m server recordings-past-retention` lists the recordings that may be deleted, and
`python -m server recording-hold <id> on|off` puts one under a legal hold or lifts it.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import sys
import time
from pathlib import Path

import asyncpg
import redis.asyncio
import redis.exceptions as redis_exc
import sqlalchemy.exc as sa_exc
from aiohttp import web

from server.actions import signatures
from server.records import chain, migrate, recordings
from server.records.blobs import BlobStore
from server.records.models import Database, utcnow
from server.runtime import demo, logs
from server.runtime.app import create_app, server_options
from server.runtime.logs import AccessLogger
from server.runtime.redis_process import RedisProcess
from server.runtime.services import connect
from server.runtime.settings import Settings, SettingsError, load_settings, redacted, sqlite_path, writable_dir


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["verify-audit"]:
        return verify_audit()
    if args == ["recordings-past-retention"]:
        return asyncio.run(_recordings_command(None, False))
    if len(args) == 3 and args[0] == "recording-hold" and args[2] in ("on", "off"):
        return asyncio.run(_recordings_command(args[1], args[2] == "on"))
    if args:
        known = "verify-audit, recordings-past-retention, recording-hold <id> on|off"
        print(f"telerounds: unknown command {' '.join(args)!r} (known: {known})", file=sys.stderr)
        return 2
    logs.configure()
    embedded: RedisProcess | None = None
    try:
        settings = load_settings()
        writable_dir("TELEROUNDS_VAR_DIR", settings.var_dir)
        can_listen(settings.host, settings.port)
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = RedisProcess(settings.var_dir / "redis")
            embedded.start()
            embedded.keep_running()  # should it die, it comes back (empty) and the service recovers
            redis_url = embedded.url
        else:
            asyncio.run(_reach_redis(redis_url))
        users = asyncio.run(_prepare(settings))
        if users:
            print(f"telerounds demo logins (password: {settings.demo_password}):", flush=True)
            for user in users:
                print(f"  {user.username:20} {user.role:10} {user.hospital_id}", flush=True)
        url = f"http://{settings.host}:{settings.port}"
        print(f"telerounds is running at {url}  (Redis: {'embedded' if embedded else 'REDIS_URL'})", flush=True)
        app = create_app(connect(settings, redis_url), redis_url)
        tune_collector()
        try:
            web.run_app(
                app,
                host=settings.host,
                port=settings.port,
                access_log_class=AccessLogger,
                print=None,
                loop=new_event_loop(),
                **server_options(settings),
            )
        except OSError as error:  # taken in the moment since `can_listen`
            raise _listen_error(settings.host, settings.port, error) from None
    except SettingsError as error:
        # One line naming the setting, never a traceback: the operator's next step is to fix it.
        print(f"telerounds: cannot start: {error}", file=sys.stderr)
        return 2
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def can_listen(host: str, port: int) -> None:
    """Bind `host`:`port` once and let go, before anything else starts: a port in use, found by
    `run_app` after the app had started its work, left threads reporting into a closed loop."""
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
                probe.bind(address)
    except OSError as error:
        raise _listen_error(host, port, error) from None


def _listen_error(host: str, port: int, error: OSError) -> SettingsError:
    where = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return SettingsError(f"PORT: {where} is already in use by another program")
    return SettingsError(f"HOST: cannot listen on {where}: {error.strerror or error}")


# Collect the young generation after this many new objects rather than Python's 700. See below.
YOUNG_GENERATION = 5_000


def tune_collector() -> None:
    """Keep the cyclic garbage collector's pauses out of the signaling path.

    First, what startup made (modules, classes, the app: ~150k objects) is frozen out of the
    collector's reach. Each full collection used to walk them all: a 100-170 ms pause of the
    event loop every 2-3 s under load, the relay's p99 stall of issue 9 (docs/benchmarks.md).

    Then the young generation is collected after 5,000 new objects instead of 700. With 500
    calls, each socket's read of its next message (a task, a timer, a future) lives the 2.5 s
    until that message comes: long enough to outlive two young collections at 700, so it was
    promoted, and a full collection (100-200 ms over 1,000 sockets' objects) followed every
    ~8 s. At 5,000 those objects die young, and the collector spends a third of the time it did.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): the relay does more per CPU-second on it
    (docs/benchmarks.md); the standard loop elsewhere."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _prepare(settings: Settings) -> list[demo.DemoUser]:
    """Migrate and seed on a database connection of its own: `run_app` starts a new event loop.

    A database that cannot be opened is a `SettingsError` naming DATABASE_URL."""
    path = sqlite_path(settings.database_url)
    if path is not None:
        # Found out by the driver, this was four tracebacks (one from its thread, after the loop closed).
        folder = path.parent if path.parent != Path() else Path.cwd()
        if not folder.is_dir():
            raise SettingsError(f"DATABASE_URL: the folder of the SQLite file does not exist: {str(folder)!r}")
        writable_dir("DATABASE_URL", folder)
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        return await demo.seed(db, settings.demo_password, history=True) if settings.demo_data else []
    except (sa_exc.DBAPIError, OSError, asyncpg.PostgresError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise SettingsError(f"DATABASE_URL: cannot use {redacted(settings.database_url)!r}: {reason}") from None
    finally:
        await db.close()


def verify_audit() -> int:
    """`python -m server verify-audit`: walk the audit chain of DATABASE_URL (server/records/chain.py).

    0 and "intact, N entries"; 1 and the first altered or missing entry or clinical row, or the
    first signed minutes whose printed head the chain no longer holds (the chain rewritten as a
    whole); 2 when the database cannot be read. Reads only: it neither migrates nor seeds."""
    try:
        settings = load_settings()
        report = asyncio.run(_verify(settings))
    except SettingsError as error:
        print(f"telerounds: cannot verify the audit trail: {error}", file=sys.stderr)
        return 2
    except (sa_exc.DBAPIError, OSError, asyncpg.PostgresError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(f"telerounds: cannot verify the audit trail: {reason}", file=sys.stderr)
        return 2
    if report.intact:
        print(f"audit trail intact, {report.entries} entries", flush=True)
        return 0
    print(f"audit trail broken: {report.problem}", flush=True)
    return 1


async def _verify(settings: Settings) -> chain.Report:
    """The walk, then the signed minutes against the chain it walked (`signatures.anchors`)."""
    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        raise SettingsError(f"DATABASE_URL: no SQLite database at {str(path)!r}")
    db = Database(settings.database_url)
    try:
        report = await chain.verify(db)
        if report.intact:
            report = chain.Report(report.entries, await signatures.anchors(db, BlobStore(settings.blob_dir)))
        return report
    finally:
        await db.close()


async def _recordings_command(hold_id: str | None, hold: bool) -> int:
    """List the recordings past retention (no hold), one a line: id, call, retained until, SHA-256;
    or set one recording's legal hold. Deleting is the admin's `DELETE /api/admin/recordings/{id}`,
    audited, and refused before `retain_until` or under a hold."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"telerounds: {error}", file=sys.stderr)
        return 2
    db = Database(settings.database_url)
    try:
        if hold_id is not None:
            if await recordings.get(db, hold_id) is None:
                print(f"telerounds: no recording {hold_id!r}", file=sys.stderr)
                return 1
            await recordings.set_hold(db, hold_id, hold)
            print(f"recording {hold_id}: legal hold {'on' if hold else 'off'}", flush=True)
            return 0
        found = await recordings.past_retention(db, utcnow())
        for row in found:
            call = f"consult {row.consult_id}" if row.consult_id else f"round {row.round_id}"
            print(f"{row.id}\t{call}\tsegment {row.segment}\t{row.retain_until.date().isoformat()}\t{row.sha256}")
        print(f"{len(found)} recording(s) past retention", flush=True)
        return 0
    finally:
        await db.close()


# How long the start waits for a REDIS_URL to answer (Compose may start them together).
REDIS_WAIT_S = 10.0


async def _reach_redis(url: str, wait_s: float = REDIS_WAIT_S) -> None:
    """PING `url` until it answers, for up to `wait_s`; then a `SettingsError` naming REDIS_URL.

    Without this, a wrong address started a service that logged a lost Redis every 5 s."""
    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                await client.ping()
                return
            except redis_exc.AuthenticationError as error:
                raise SettingsError(f"REDIS_URL: Redis refused the credentials of {redacted(url)!r}: {error}") from None
            except (redis_exc.RedisError, OSError) as error:
                if time.monotonic() >= deadline:
                    raise SettingsError(f"REDIS_URL: no Redis answers at {redacted(url)!r}: {error}") from None
            await asyncio.sleep(0.5)
    finally:
        await client.aclose()


if __name__ == "__main__":
    sys.exit(main())
