"""The recordings an instance is writing now (held by `runtime/services`; run by
server/actions/recording.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from server.live.rooms import Peer
from server.media.recorder import Recorder
from server.records.models import Recording


@dataclass
class Live:
    """A recording this instance is writing: its row, its call, its peer there, its recorder."""

    row: Recording
    room: str
    peer: Peer
    recorder: Recorder
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: bool = False


class Recordings:
    def __init__(self) -> None:
        self.live: dict[str, Live] = {}
