"""Fixtures of the system tests: the browser tests' Chromium (see tests/system/browsing.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.system.browsing import launched_browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for launched in launched_browser():
        yield launched
