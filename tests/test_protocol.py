"""docs/protocol.md documents every event the server handles."""

from __future__ import annotations

from pathlib import Path

from signaling import monitor
from signaling.server import ROUTERS

PROTOCOL = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


def test_every_handled_event_is_documented() -> None:
    events = [event for router in [*ROUTERS, monitor.router] for event in router.handlers]
    missing = [event for event in events if f"`{event}`" not in PROTOCOL]
    assert not missing, f"add these events to docs/protocol.md: {missing}"
