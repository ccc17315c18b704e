"""The recorder peer: one more WebRTC peer in a recorded call, at the server (aiortc).

It receives every participant's audio and video (it sends nothing) and, about `FPS` times a
second, lays out their latest pictures in one grid and mixes the audio that arrived since, and
writes both to the recording's file (`webm.WebmWriter`). Decoding is aiortc's (its own
threads); scaling, composing, encoding and writing run in this recording's one worker thread,
so the event loop only hands frames over, and the file's packets stay in order.

As the newcomer of the call it offers to each participant (receive only); a participant who
joins later offers to it, as to everyone, and it answers. Signals go out through `send`, which
the use case (server/actions/recording.py) gives it: the recorder knows peers, not sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from server.media import layout
from server.media.webm import FPS, SAMPLE_RATE, WebmWriter

log = logging.getLogger("telerounds.recorder")

SendSignal = Callable[[str, dict[str, Any]], Awaitable[None]]
MAX_BUFFERED_S = 0.5  # a participant's audio kept waiting for the mix; older is dropped
MAX_PARTICIPANTS = 8
FAILURES_TO_GIVE_UP = 30  # consecutive frames that could not be written (two seconds): the file is broken


@dataclass
class Participant:
    pc: RTCPeerConnection
    video: av.VideoFrame | None = None
    audio: numpy.ndarray = field(default_factory=lambda: numpy.zeros(0, numpy.int16))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def take_audio(self, samples: int) -> numpy.ndarray:
        """`samples` stereo samples (interleaved), silence where none arrived."""
        wanted = samples * 2
        taken, self.audio = self.audio[:wanted], self.audio[wanted:]
        if len(taken) < wanted:
            taken = numpy.concatenate([taken, numpy.zeros(wanted - len(taken), numpy.int16)])
        return taken


class Recorder:
    def __init__(self, path: Path, configuration: RTCConfiguration, send: SendSignal) -> None:
        self.path = path
        self.configuration = configuration
        self.send = send
        self.participants: dict[str, Participant] = {}
        self.closing: set[asyncio.Future[None]] = set()  # connections replaced, being closed
        self.writer: WebmWriter | None = None
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording")
        self.clock: asyncio.Task[None] | None = None
        self.started = 0.0
        self.audio_taken = 0  # stereo samples mixed so far
        self.late_ticks = 0  # ticks that began after the next was due: the recording fell behind
        self.ticks = 0
        self.work_s = 0.0  # time spent composing, encoding and writing, in the worker thread
        self.failed: str | None = None  # why the file could no longer be written (the clock stopped)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.writer = await loop.run_in_executor(self.thread, WebmWriter, self.path)
        self.started = loop.time()
        self.clock = asyncio.create_task(self._run())

    # Signaling --------------------------------------------------------------------------------

    async def offer_to(self, peer_id: str) -> None:
        """Ask a participant for their audio and video (the recorder joined after them)."""
        if peer_id not in self.participants and len(self.participants) >= MAX_PARTICIPANTS:
            return
        pc = self._connection(peer_id)
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        await self.send(peer_id, {"type": "offer", "sdp": pc.localDescription.sdp})

    async def signal(self, peer_id: str, data: dict[str, Any]) -> None:
        """A participant's `rtc:signal` to the recorder: an answer, an offer (they joined after
        it, or renegotiate), or an ICE candidate. A bad one is dropped, never raised."""
        try:
            if data.get("type") == "answer" and peer_id in self.participants:
                await self.participants[peer_id].pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
            elif data.get("type") == "offer":
                if peer_id not in self.participants and len(self.participants) >= MAX_PARTICIPANTS:
                    return
                pc = self._connection(peer_id)
                await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                await self.send(peer_id, {"type": "answer", "sdp": pc.localDescription.sdp})
            elif "candidate" in data and peer_id in self.participants:
                await self._candidate(self.participants[peer_id].pc, data["candidate"])
        except Exception as error:  # a participant's bad SDP must not end the recording
            log.warning("recorder: signal from %s dropped: %s", peer_id, error)

    async def _candidate(self, pc: RTCPeerConnection, init: dict[str, Any]) -> None:
        text = str(init.get("candidate") or "")
        if not text:
            return
        candidate = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        await pc.addIceCandidate(candidate)

    def _connection(self, peer_id: str) -> RTCPeerConnection:
        """A fresh connection to this participant (replacing any earlier one)."""
        old = self.participants.pop(peer_id, None)
        if old is not None:
            self.closing.add(asyncio.ensure_future(self._close(old)))
        pc = RTCPeerConnection(self.configuration)
        participant = Participant(pc)
        self.participants[peer_id] = participant

        @pc.on("track")
        def received(track: MediaStreamTrack) -> None:
            work = self._pictures(participant, track) if track.kind == "video" else self._sound(participant, track)
            participant.tasks.append(asyncio.ensure_future(work))

        @pc.on("connectionstatechange")
        async def state() -> None:
            if pc.connectionState in ("failed", "closed") and self.participants.get(peer_id) is participant:
                await self.drop(peer_id)

        return pc

    async def drop(self, peer_id: str) -> None:
        """The participant left: their tile goes, the others keep their places in order."""
        participant = self.participants.pop(peer_id, None)
        if participant is not None:
            await self._close(participant)

    async def _close(self, participant: Participant) -> None:
        for task in participant.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await participant.pc.close()

    # Media ------------------------------------------------------------------------------------

    async def _pictures(self, participant: Participant, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                participant.video = await track.recv()  # type: ignore[assignment]

    async def _sound(self, participant: Participant, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=SAMPLE_RATE)
        most = int(MAX_BUFFERED_S * SAMPLE_RATE) * 2
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                for out in resampler.resample(frame):  # type: ignore[arg-type]
                    participant.audio = numpy.concatenate([participant.audio, out.to_ndarray().reshape(-1)])[-most:]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = failures = 0
        while True:
            tick += 1
            due = self.started + tick / FPS
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -1 / FPS:
                # Behind by more than a frame: skip to now (the video's clock is the wall's; a
                # frame repeats longer rather than the recording drifting away from real time).
                self.late_ticks += 1
                tick = int((loop.time() - self.started) * FPS)
            self.ticks += 1
            elapsed = loop.time() - self.started
            order = sorted(self.participants)
            pictures = [self.participants[p].video for p in order]
            samples = int(elapsed * SAMPLE_RATE) - self.audio_taken
            self.audio_taken += samples
            mixed = numpy.zeros(samples * 2, numpy.int32)
            for peer_id in order:
                mixed += self.participants[peer_id].take_audio(samples)
            pcm = numpy.clip(mixed, -32768, 32767).astype(numpy.int16).reshape(1, -1)
            try:
                await loop.run_in_executor(self.thread, self._write, pictures, int(elapsed * 1000), pcm)
                failures = 0
            except Exception as error:  # a frame that cannot be encoded is skipped; a broken file ends it
                failures += 1
                if failures == 1:
                    log.warning("recorder %s: a frame could not be written: %r", self.path.name, error)
                if failures >= FAILURES_TO_GIVE_UP:
                    self.failed = f"the file could no longer be written: {type(error).__name__}"
                    log.error("recorder %s: %s", self.path.name, self.failed)
                    return

    def _write(self, pictures: list[av.VideoFrame | None], at_ms: int, pcm: numpy.ndarray) -> None:
        began = time.perf_counter()
        assert self.writer is not None
        scaled: list[layout.Image | None] = []
        for picture, (_, _, tile_w, tile_h) in zip(pictures, layout.tiles(len(pictures)), strict=True):
            if picture is None:
                scaled.append(None)
                continue
            width, height = layout.fit(picture.width, picture.height, tile_w, tile_h)
            scaled.append(
                numpy.asarray(picture.reformat(width=width, height=height, format="rgb24").to_ndarray(), numpy.uint8)
            )
        self.writer.write_video(layout.compose(scaled) if scaled else layout.compose([None]), at_ms)
        self.writer.write_audio(pcm)
        self.work_s += time.perf_counter() - began

    async def stop(self) -> float:
        """Leave every participant, finish the file; its duration in seconds."""
        if self.clock is not None:
            self.clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.clock
        for peer_id in list(self.participants):
            await self.drop(peer_id)
        duration = 0.0
        if self.writer is not None:
            writer = self.writer
            self.writer = None
            await asyncio.get_running_loop().run_in_executor(self.thread, writer.close)
            duration = writer.duration_s
        self.thread.shutdown(wait=False)
        return duration
