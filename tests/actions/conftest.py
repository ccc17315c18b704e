"""The action tests' fixtures: the screens a test watched are closed when it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.actions.verify import WATCHING
from tests.conftest import StartInstance


@pytest.fixture(autouse=True)
async def close_watched_screens(start_instance: StartInstance) -> AsyncIterator[None]:
    """Asks for `start_instance` so that it ends before the instances stop."""
    yield
    while WATCHING:
        await WATCHING.pop().close()
