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

from server import demo, migrate
from server.auth import hash_password
from server.records import Database, User
from server.redis_process import RedisProcess, free_port
from server.settings import normalize_database_url

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo"


class Cluster:
    def __init__(self, instances: int = 2, extra_specialists: int = 0, env: dict[str, str] | None = None) -> None:
        self.count = instances
        self.extra_specialists = extra_specialists
        self.env = env or {}
        self.workdir = Path(tempfile.mkdtemp(prefix="telerounds-bench-"))
        self.redis = RedisProcess(self.workdir / "redis")
        self.database_url = normalize_database_url(f"sqlite:///{self.workdir / 'telerounds.db'}")
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

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
        asyncio.run(self._prepare())
        for _ in range(self.count):
            port = free_port()
            env = {
                **os.environ,
                "PORT": str(port),
                "REDIS_URL": self.redis.url,
                "DATABASE_URL": self.database_url,
                "SECRET_KEY": "bench-secret-key-0123456789",
                "TELEROUNDS_VAR_DIR": str(self.workdir / "var"),
                "TELEROUNDS_DEMO_DATA": "false",
                "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
                **self.env,
            }
            process = subprocess.Popen(
                [sys.executable, "-m", "server"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.processes.append(process)
            self.urls.append(f"http://127.0.0.1:{port}")
        for url in self.urls:
            _wait_ready(url)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis.stop()


def _wait_ready(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")
