"""The pre-call check: a server-side aiortc peer that echoes the caller's camera and microphone.

A clinician tests camera, microphone and network before a consult: the browser sends its media
here and sees and hears it come back, with connection figures on a data channel. Each check is
closed after `PRECALL_SECONDS`; at most `PRECALL_MAX` run at once on an instance, and one per user
across all instances (a lease in Redis, released when the check closes and lapsing by itself
if its instance dies). ICE servers come from settings only, so the peer never reaches anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from typing import Any

import redis.asyncio as aioredis
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from server.contract.errors import AppError
from server.live import caps, keys
from server.runtime.ice import server_peer_configuration
from server.runtime.settings import Settings

log = logging.getLogger("telerounds.precall")


# A check's lease outlives its `PRECALL_SECONDS` a little: it is released when the check closes.
LEASE_MARGIN_S = 5.0


class PrecallPeers:
    def __init__(self, settings: Settings, redis: aioredis.Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.active: set[RTCPeerConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        # Each running check's user and lease token, to release the lease when it closes.
        self.leases: dict[RTCPeerConnection, tuple[str, str]] = {}

    def _configuration(self, user_id: str) -> RTCConfiguration:
        # The calls' ICE servers and policy, so the check proves the path the calls take (TURN).
        return server_peer_configuration(self.settings, user_id)

    async def answer(self, user_id: str, sdp: str) -> RTCSessionDescription:
        """Answer a browser's offer with an echoing peer."""
        if "m=audio" not in sdp and "m=video" not in sdp:
            raise AppError("invalid", "the offer carries no camera or microphone to check")
        if len(self.active) >= self.settings.precall_max:
            raise AppError(
                "rate_limited", "too many pre-call checks are running; try again in a minute", retry_after_s=60
            )
        key = keys.precall_lease(user_id)
        token = await caps.take_lease(self.redis, key, self.settings.precall_seconds + LEASE_MARGIN_S)
        if token is None:
            wait_s = max(1.0, await caps.lease_wait_s(self.redis, key))
            raise AppError(
                "rate_limited",
                "a pre-call check of yours is running already (one at a time); close it, or try again "
                f"in {math.ceil(wait_s)} s",
                retry_after_s=wait_s,
            )
        pc = RTCPeerConnection(self._configuration(user_id))
        self.active.add(pc)
        self.leases[pc] = (key, token)
        relay = MediaRelay()

        @pc.on("track")
        def echo(track: Any) -> None:
            pc.addTrack(relay.subscribe(track))

        @pc.on("datachannel")
        def figures(channel: Any) -> None:
            self._spawn(self._send_figures(pc, channel))

        @pc.on("connectionstatechange")
        async def state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._close(pc)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as error:
            await self._close(pc)
            raise AppError("invalid", f"the offer could not be used: {type(error).__name__}") from None
        self._spawn(self._close_later(pc))
        return pc.localDescription

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send_figures(self, pc: RTCPeerConnection, channel: Any) -> None:
        while pc in self.active and channel.readyState != "closed":
            await asyncio.sleep(1)
            if channel.readyState != "open":
                continue
            figures: dict[str, Any] = {"connection": pc.connectionState}
            for report in (await pc.getStats()).values():
                if report.type == "inbound-rtp":
                    figures[f"{report.kind}_packets_received"] = report.packetsReceived
                    figures[f"{report.kind}_packets_lost"] = report.packetsLost
                    figures[f"{report.kind}_jitter"] = report.jitter
                elif report.type == "remote-inbound-rtp" and report.roundTripTime is not None:
                    figures["rtt_ms"] = round(report.roundTripTime * 1000, 1)
            with contextlib.suppress(Exception):
                channel.send(json.dumps(figures))

    async def _close_later(self, pc: RTCPeerConnection) -> None:
        await asyncio.sleep(self.settings.precall_seconds)
        await self._close(pc)

    async def _close(self, pc: RTCPeerConnection) -> None:
        if pc in self.active:
            self.active.discard(pc)
            lease = self.leases.pop(pc, None)
            if lease is not None:
                with contextlib.suppress(Exception):  # Redis down: the lease lapses by itself
                    await caps.release_lease(self.redis, *lease)
            await pc.close()

    async def close_all(self) -> None:
        for pc in list(self.active):
            await self._close(pc)
        for task in list(self.tasks):
            task.cancel()
