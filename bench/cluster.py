"""A telerounds service for benchmarks: one Redis, one database, N instances as separate processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from server.policy.auth import hash_password
from server.records import migrate
from server.records.models import Database, User
from server.runtime import demo
from server.runtime.redis_process import RedisProcess, free_port
from server.runtime.settings import normalize_database_url

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo"
SECRET_KEY = "bench-secret-key-0123456789-abcdefghij"  # 32+ bytes, as HS256 wants

# What every bench instance gets: a known key (the bench issues tokens itself) and limits far
# above what the bench sends, so a limit never shapes a figure.
BENCH_ENV = {
    "SECRET_KEY": SECRET_KEY,
    "TELEROUNDS_DEMO_DATA": "false",
    "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
    "RATE_EVENTS_BURST": "1000000",
    "RATE_EVENTS_PER_S": "1000000",
    "MAX_OPEN_REQUESTS": "1000",  # S4: requests in flight at 10/s, each cancelled once offered
    "MAX_OPEN_EMERGENCIES": "1000",
    "MAX_SOCKETS_PER_USER": "10000",
}


def pin(pid: int, cpus: str | None) -> None:
    """Pin a process (all its threads) to `cpus`, e.g. "0"; quietly nothing without taskset."""
    if cpus is None:
        return
    try:
        subprocess.run(["taskset", "-a", "-pc", cpus, str(pid)], check=False, capture_output=True)
    except FileNotFoundError:
        pass


class Cluster:
    """N instances on one Redis. With `database_url`, that (already prepared) database is used;
    otherwise a fresh SQLite one with the demo data and `extra_specialists` surgeons."""

    def __init__(
        self,
        instances: int = 2,
        extra_specialists: int = 0,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
        command: list[str] | None = None,
        cpus: str | None = None,
        instance_env: list[dict[str, str]] | None = None,
    ) -> None:
        self.count = instances
        # Settings of one instance only, by index (a district's instance with its own TURN address).
        self.instance_env = instance_env or []
        self.extra_specialists = extra_specialists
        self.env = env or {}
        self.workdir = Path(tempfile.mkdtemp(prefix="telerounds-bench-"))
        self.redis = RedisProcess(self.workdir / "redis")
        self.prepared = database_url is not None
        self.database_url = database_url or normalize_database_url(f"sqlite:///{self.workdir / 'telerounds.db'}")
        self.command = command or [sys.executable, "-m", "server"]
        self.cpus = cpus
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    @property
    def redis_pid(self) -> int:
        assert self.redis.process is not None
        return self.redis.process.pid

    async def _prepare(self) -> None:
        db = Database(self.database_url)
        await migrate.upgrade(db)
        await demo.seed(db, PASSWORD)
        password_hash = hash_password(PASSWORD)
        async with db.session() as session, session.begin():
            for i in range(self.extra_specialists):
                session.add(
                    User(
                        username=f"bench.surgeon{i}",
                        name=f"Bench surgeon {i}",
                        role="specialist",
                        hospital_id="xanhpon" if i % 2 else "qn-dkt",
                        specialties=["surgery"],
                        password_hash=password_hash,
                        active=True,
                    )
                )
        await db.close()

    def start(self) -> None:
        self.redis.start()
        pin(self.redis_pid, self.cpus)
        if not self.prepared:
            asyncio.run(self._prepare())
        for index in range(self.count):
            port = free_port()
            self.processes.append(self._spawn(port, index))
            self.urls.append(f"http://127.0.0.1:{port}")
        for url in self.urls:
            wait_ready(url)

    def _spawn(self, port: int, index: int = 0) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            **BENCH_ENV,
            "PORT": str(port),
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": self.database_url,
            "TELEROUNDS_VAR_DIR": str(self.workdir / "var"),
            **self.env,
            **(self.instance_env[index] if index < len(self.instance_env) else {}),
        }
        process = subprocess.Popen(
            self.command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        pin(process.pid, self.cpus)
        return process

    def stop_instance(self, index: int) -> None:
        """Stop one instance (SIGTERM, as a deploy would): its users' connections drop."""
        process = self.processes[index]
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def start_instance(self, index: int) -> None:
        """Start a stopped instance again on its address; returns once it is ready."""
        port = int(self.urls[index].rsplit(":", 1)[1])
        self.processes[index] = self._spawn(port, index)
        wait_ready(self.urls[index], poll_s=0.02)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis.stop()


def wait_ready(url: str, timeout_s: float = 60, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(poll_s)
    raise RuntimeError(f"{url} did not become ready")
