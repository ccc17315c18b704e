"""The embedded redis-server: starts on a private port, answers, and is gone after stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from server.runtime.redis_process import RedisProcess, redis_executable


def test_embedded_redis_starts_answers_and_stops(tmp_path: Path) -> None:
    assert Path(redis_executable()).exists()
    process = RedisProcess(tmp_path)
    process.start()
    client = redis.Redis.from_url(process.url)
    assert client.ping()
    client.close()
    process.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(process.url, socket_connect_timeout=0.5).ping()
