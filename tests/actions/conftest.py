"""The action tests' fixtures: instances that send the board often (so that a quiet spell after
an action is short), and the screens a test watched are closed when it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.actions.verify import BOARD_UPDATE_S, WATCHING
from tests.conftest import Instance, StartInstance


@pytest.fixture
def start_instance(start_instance: StartInstance) -> StartInstance:
    """The shared `start_instance`, with the board's updates coalesced over BOARD_UPDATE_S
    unless a test says otherwise (`two_instances` and `instance` start theirs through this)."""

    async def start(*args: Any, **env: str) -> Instance:
        return await start_instance(*args, **{"BOARD_UPDATE_INTERVAL_S": str(BOARD_UPDATE_S), **env})

    return start


@pytest.fixture(autouse=True)
async def close_watched_screens(start_instance: StartInstance) -> AsyncIterator[None]:
    """Asks for `start_instance` so that it ends before the instances stop."""
    yield
    while WATCHING:
        await WATCHING.pop().close()
