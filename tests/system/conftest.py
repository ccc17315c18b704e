"""Fixtures of the system tests: the browser tests' Chromium (see tests/system/browsing.py) and
coturn on loopback (tests/system/turn.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.system.browsing import launched_browser
from tests.system.turn import TurnServer


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for launched in launched_browser():
        yield launched


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[TurnServer]:
    """coturn on loopback (UDP and TCP), with the REST-API shared secret; killed after the test."""
    server = TurnServer(tmp_path).start()
    yield server
    server.stop()
