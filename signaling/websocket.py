"""The Socket.IO server's WebSocket, without per-message compression.

aiohttp accepts the `permessage-deflate` extension that browsers and socket.io clients offer,
and then every connection keeps its own zlib state: about 260 KB of window and hash tables for
sending and 32 KB for receiving, touched a little more with every message. That was most of an
idle connection's memory, and a soak's memory grew steadily as the windows filled (see
docs/benchmarks.md). Signaling messages are small (an SDP of a few KB, ICE candidates of a few
hundred bytes) next to a call's media, so they go uncompressed, as with socket.io's own Node
server, whose `perMessageDeflate` is off by default.
"""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers.aiohttp import WebSocket


class UncompressedWebSocket(WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp WebSocket, declining the client's offer of compression."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock


def use_uncompressed_websocket(sio: socketio.AsyncServer) -> None:
    """Make `sio` accept WebSockets with `UncompressedWebSocket`."""
    # The driver table is shared by every engine.io server of the process: this one gets a copy.
    sio.eio._async = {**sio.eio._async, "websocket": UncompressedWebSocket}
