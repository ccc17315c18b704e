"""The Socket.IO WebSocket declines per-message compression, and still carries every message."""

from __future__ import annotations

import json

import aiohttp

from tests.conftest import Instance, login


async def test_a_client_offering_compression_gets_plain_frames(instance: Instance) -> None:
    token = await login(instance.url, "bavi.clinician")
    url = f"{instance.url}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        # compress=15: the offer browsers and socket.io clients make (permessage-deflate).
        async with http.ws_connect(url, compress=15) as ws:
            assert ws.compress == 0
            opened = await ws.receive_str(timeout=5)
            assert opened.startswith("0{")
            await ws.send_str("40" + json.dumps({"token": token}))
            connected = await ws.receive_str(timeout=5)
            assert connected.startswith("40{")
            # The session's state, a real message after the connect, arrives whole and uncompressed.
            state = await ws.receive_str(timeout=5)
            assert state.startswith('42["session:state"')
            assert json.loads(state[2:])[1]["user"]["role"] == "clinician"
