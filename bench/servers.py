"""Every server the bench measures, started the same way: separate processes on loopback, pinned
to the servers' core, with the process ids whose CPU and memory the load generator reads."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cluster import ROOT, Cluster, pin, wait_ready
from bench.fixtures import Fixtures
from server.runtime.redis_process import RedisProcess, free_port

REFERENCE = ROOT / "bench" / "reference"

# Two cores: the servers (and their Redis) on one, the load generator on the other.
SERVER_CPUS = "0" if (os.cpu_count() or 1) >= 2 else None
LOADGEN_CPUS = "1" if (os.cpu_count() or 1) >= 2 else None


@dataclass
class Server:
    """One measured configuration. `kind` is how the load generator talks to it."""

    name: str
    kind: str  # "socketio" | "ws" | "redis"
    instances: int = 1
    urls: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    redis_pids: list[int] = field(default_factory=list)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def rooms(self, fixtures: Fixtures, count: int) -> list[dict[str, Any]]:
        """Room specs for the load generator: `a` sends, `b` receives; across instances when there are two."""
        if self.kind != "socketio":
            return [{"id": str(i), "a": {"url": self.urls[0]}, "b": {"url": self.urls[0]}} for i in range(count)]
        first, last = self.urls[0], self.urls[-1]
        return [
            {
                "id": room.consult_id,
                "a": {"url": first, "token": room.specialist_token},
                "b": {"url": last, "token": room.clinician_token},
            }
            for room in fixtures.rooms[:count]
        ]

    def sides(self, tokens: list[str]) -> list[dict[str, str]]:
        """Idle connections, spread over the instances."""
        return [{"url": self.urls[i % len(self.urls)], "token": token} for i, token in enumerate(tokens)]

    def plan(self, fixtures: Fixtures, rooms: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "pids": self.pids,
            "redis_pids": self.redis_pids,
            "rooms": self.rooms(fixtures, rooms),
        }


class Telerounds(Server):
    """telerounds itself: `instances` processes on one Redis, on a private copy of the fixtures."""

    def __init__(self, name: str, instances: int, fixtures: Fixtures, workdir: Path, variant: list[str] | None = None):
        super().__init__(name, "socketio", instances)
        self.fixtures, self.workdir, self.variant = fixtures, workdir, variant
        self.cluster: Cluster | None = None

    def start(self) -> None:
        # A variant runs through bench/variants.py (an older relay, another loop, a routing prototype).
        command = [sys.executable, "-m", "bench.variants", *self.variant] if self.variant else None
        self.cluster = Cluster(
            instances=self.instances,
            database_url=self.fixtures.database_url(self.workdir),
            command=command,
            cpus=SERVER_CPUS,
        )
        self.cluster.start()
        self.urls, self.pids, self.redis_pids = self.cluster.urls, self.cluster.pids, [self.cluster.redis_pid]

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


class Processes(Server):
    """Servers started from a command line with PORT (and REDIS_URL when there are two instances)."""

    def __init__(
        self, name: str, kind: str, instances: int, command: list[str], scheme: str = "http", cwd: Path = ROOT
    ):
        super().__init__(name, kind, instances)
        self.command, self.scheme, self.cwd = command, scheme, cwd
        self.redis: RedisProcess | None = None
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        if self.instances > 1:
            self.redis = RedisProcess(Path(tempfile.mkdtemp(prefix="bench-redis-")))
            self.redis.start()
            assert self.redis.process is not None
            pin(self.redis.process.pid, SERVER_CPUS)
            self.redis_pids = [self.redis.process.pid]
            env["REDIS_URL"] = self.redis.url
        for _ in range(self.instances):
            port = free_port()
            args = [
                part.replace("{port}", str(port)).replace("{redis}", env.get("REDIS_URL", "")) for part in self.command
            ]
            process = subprocess.Popen(
                [a for a in args if a], cwd=self.cwd, env={**env, "PORT": str(port)}, stdout=subprocess.DEVNULL
            )
            pin(process.pid, SERVER_CPUS)
            self.processes.append(process)
            wait_ready(f"http://127.0.0.1:{port}")
            self.urls.append(f"{self.scheme}://127.0.0.1:{port}" + ("/" if self.scheme == "ws" else ""))
        self.pids = [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.redis is not None:
            self.redis.stop()


def node_relay(instances: int) -> Processes:
    return Processes(f"node-socket.io ×{instances}", "socketio", instances, ["node", "server.js"], cwd=REFERENCE)


def bare_relay(instances: int) -> Processes:
    command = [sys.executable, "-m", "bench.floors", "relay", "{port}", "{redis}"]
    return Processes(f"bare python-socketio ×{instances}", "socketio", instances, command)


def ws_echo() -> Processes:
    return Processes("floor: WebSocket echo", "ws", 1, [sys.executable, "-m", "bench.floors", "echo", "{port}"], "ws")


class RedisPing(Server):
    def __init__(self) -> None:
        super().__init__("floor: Redis PING", "redis")
        self.redis = RedisProcess(Path(tempfile.mkdtemp(prefix="bench-redis-")))

    def start(self) -> None:
        self.redis.start()
        assert self.redis.process is not None
        pin(self.redis.process.pid, SERVER_CPUS)
        self.urls, self.pids = [self.redis.url], [self.redis.process.pid]

    def stop(self) -> None:
        self.redis.stop()
