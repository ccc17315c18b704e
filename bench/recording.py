"""Recording at the server (issue 22): what one recorded call costs the instance, and how many one
core keeps recording in real time. Printed, and written into docs/benchmarks.md; never asserted.

python -m bench.recording                 1, 2, 4, 6, 8 and 10 recorded two-party calls, then one six-party round
python -m bench.recording --seconds 20    longer steps (default 12 s each)
python -m bench.recording --no-write      print only

The recorders (server/media/recorder.py, exactly as an instance runs them) run in this process,
pinned to core 0; the participants run in a child process pinned to core 1: aiortc peers each
sending a synthetic camera at the capped size (640x360, 15 fps) and a tone, and answering the
recorders' offers over a pipe (no Socket.IO: the signaling is not what is measured). For each
step: this process's CPU (all its threads: aiortc's receiving and decoding, the grid, VP8 and
Opus encoding, the file) per second of wall time, its resident memory over the step's start, and
whether the recordings kept real time: the ticks that fell more than a frame behind, and each
file's length against the time it was recorded. The participants' upload is what each sends the
recorder (bytes sent by its peer connection per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy
from aiortc import AudioStreamTrack, MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bench import report
from server.media.recorder import Recorder
from server.media.webm import FPS
from server.runtime.settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- recording -->", "<!-- /recording -->"
CALLS = (1, 2, 4, 6, 8, 10)
ROUND_PEOPLE = 6
RECORDER_CPU, PARTICIPANT_CPU = 0, 1


# The participants' side (the child process) ---------------------------------------------------


class Camera(MediaStreamTrack):
    """A synthetic camera at the recorder copy's cap: 640x360, 15 frames a second, its own colour."""

    kind = "video"

    def __init__(self, seed: int) -> None:
        super().__init__()
        rng = numpy.random.default_rng(seed)
        self.image = numpy.zeros((360, 640, 3), numpy.uint8)
        self.image[:, :] = rng.integers(40, 220, 3)
        self.start: float | None = None
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        if self.start is None:
            self.start = time.monotonic()
        self.count += 1
        await asyncio.sleep(max(0.0, self.start + self.count / FPS - time.monotonic()))
        # A moving bar, so the encoders see a changing picture as from a camera.
        picture = self.image.copy()
        x = (self.count * 8) % 600
        picture[:, x : x + 40] = 255
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts, frame.time_base = int(self.count * 90000 / FPS), Fraction(1, 90000)
        return frame


class Tone(AudioStreamTrack):
    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        t = (numpy.arange(frame.samples) + (frame.pts or 0)) / frame.sample_rate
        tone = (numpy.sin(2 * numpy.pi * 440 * t) * 6000).astype(numpy.int16).reshape(1, -1)
        out = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, Fraction(1, frame.sample_rate)
        return out


async def participants() -> None:
    """Answer each offer read from stdin (`{id, sdp}`) with a camera and a tone; `stats` prints
    the bytes every peer connection sent so far."""
    os.sched_setaffinity(0, {PARTICIPANT_CPU % (os.cpu_count() or 1)})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pcs: dict[str, RTCPeerConnection] = {}
    while line := await reader.readline():
        message = json.loads(line)
        if message.get("stats"):
            sent = 0
            for pc in pcs.values():
                for stats in (await pc.getStats()).values():
                    if stats.type == "outbound-rtp":
                        sent += stats.bytesSent
            print(json.dumps({"sent": sent, "peers": len(pcs)}), flush=True)
            continue
        if message.get("close"):
            for pc in pcs.values():
                await pc.close()
            pcs.clear()
            print(json.dumps({"closed": True}), flush=True)
            continue
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs[message["id"]] = pc
        await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
        pc.addTrack(Camera(len(pcs)))
        pc.addTrack(Tone())
        await pc.setLocalDescription(await pc.createAnswer())
        print(json.dumps({"id": message["id"], "sdp": pc.localDescription.sdp}), flush=True)


# The recorders' side (this process) -----------------------------------------------------------


class Crowd:
    """The child process of participants, and the answers awaited from it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            key = "stats" if "sent" in message else "closed" if "closed" in message else message["id"]
            future = self.waiting.pop(key, None)
            if future is not None:
                future.set_result(message)

    async def ask(self, key: str, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()
        return await asyncio.wait_for(future, 60)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def step(crowd: Crowd, folder: Path, calls: int, people: int, seconds: float) -> dict[str, Any]:
    """`calls` recordings of `people` participants each, for `seconds`: the figures."""
    recorders: list[Recorder] = []
    rss_before = rss_mb()
    for call in range(calls):
        holder: list[Recorder] = []

        async def send(peer_id: str, data: dict[str, Any], holder: list[Recorder] = holder) -> None:
            answer = await crowd.ask(peer_id, {"id": peer_id, "sdp": data["sdp"]})
            await holder[0].signal(peer_id, {"type": "answer", "sdp": answer["sdp"]})

        recorder = Recorder(folder / f"{calls}-{people}-{call}.webm", RTCConfiguration(iceServers=[]), send)
        holder.append(recorder)
        await recorder.start()
        for person in range(people):
            await recorder.offer_to(f"{calls}-{people}-{call}-{person}")
        recorders.append(recorder)
    # Every picture arriving before the measure starts.
    for _ in range(300):
        if all(
            len(r.participants) == people and all(p.video is not None for p in r.participants.values())
            for r in recorders
        ):
            break
        await asyncio.sleep(0.1)
    sent_before = (await crowd.ask("stats", {"stats": True}))["sent"]
    late_before = sum(r.late_ticks for r in recorders)
    ticks_before = sum(r.ticks for r in recorders)
    cpu_before, wall_before = _cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = _cpu() - cpu_before, time.monotonic() - wall_before
    sent = (await crowd.ask("stats", {"stats": True}))["sent"] - sent_before
    late = sum(r.late_ticks for r in recorders) - late_before
    ticks = sum(r.ticks for r in recorders) - ticks_before
    rss_after = rss_mb()
    loop = asyncio.get_running_loop()
    # Each file's length over the time it was recorded: 1.0 when the recording kept real time.
    kept = []
    for r in recorders:
        lasted = loop.time() - r.started
        kept.append(await r.stop() / lasted)
    await crowd.ask("closed", {"close": True})
    return {
        "calls": calls,
        "people": people,
        "cpu_pct": 100 * cpu / wall,
        "cpu_pct_per_call": 100 * cpu / wall / calls,
        "mb_per_recording": max(0.0, rss_after - rss_before) / calls,
        "late_pct": 100 * late / max(ticks, 1),
        "fps": ticks / wall / calls,
        "upload_kbps": 8 * sent / wall / (calls * people) / 1000,
        "kept": min(kept),
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(seconds: float) -> list[dict[str, Any]]:
    os.sched_setaffinity(0, {RECORDER_CPU})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.recording",
        "--participants",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    crowd = Crowd(process)
    results = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for calls, people in [*((c, 2) for c in CALLS), (1, ROUND_PEOPLE)]:
                result = await step(crowd, Path(folder), calls, people, seconds)
                results.append(result)
                print(
                    f"  {calls} call(s) of {people}: CPU {result['cpu_pct']:5.1f} % of a core "
                    f"({result['cpu_pct_per_call']:.1f} % each), {result['fps']:.1f} fps written, "
                    f"{result['late_pct']:.1f} % ticks late, length/time {result['kept']:.2f}, "
                    f"+{result['mb_per_recording']:.1f} MB each, "
                    f"upload {result['upload_kbps']:.0f} kbps per participant",
                    flush=True,
                )
    finally:
        process.kill()
        await process.wait()
    return results


def _starved(two_party: list[dict[str, Any]]) -> str:
    """A sentence when the participants' process (one core encoding every camera) fell behind: the
    recorders then received fewer frames than real cameras send, and under-report their CPU."""
    first = two_party[0]["upload_kbps"]
    behind = [r["calls"] for r in two_party if r["upload_kbps"] < 0.8 * first]
    if not behind:
        return "The participants' upload held at every step, so every step's recorders got what real cameras send. "
    return (
        f"From {behind[0]} calls the participants' process (one core encoding every camera) could not keep up: "
        "their upload fell, the recorders received fewer frames than real cameras send, and the per-call CPU "
        "of those steps is an underestimate; the one-call figure is the one to plan with. "
    )


def section(results: list[dict[str, Any]], command: str, seconds: float, load: str) -> str:
    rows = "\n".join(
        f"| {r['calls']} × {r['people']} people | {r['cpu_pct']:.0f} % | {r['cpu_pct_per_call']:.1f} % | "
        f"{r['fps']:.1f} | {r['late_pct']:.1f} % | {r['kept']:.2f} | {r['mb_per_recording']:.1f} MB | "
        f"{r['upload_kbps']:.0f} kbps |"
        for r in results
    )
    two_party = [r for r in results if r["people"] == 2]
    per_call = next(r["cpu_pct_per_call"] for r in two_party if r["calls"] == 1)
    memory = [r["mb_per_recording"] for r in two_party]
    holds = max((r["calls"] for r in two_party if r["late_pct"] < 1 and r["cpu_pct"] < 85), default=0)
    return (
        f"{START}\n## Recording at the server (issue 22)\n\n"
        f"Command: `{command}` · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {seconds:g} s per step · "
        f"load average {load} at the start\n\n"
        "The recorders in one process pinned to core 0, exactly as an instance runs them "
        "(server/media/recorder.py: receiving and decoding with aiortc, the 640x360 grid at 15 fps, VP8 and "
        "Opus with PyAV, the WebM file); the participants, aiortc peers sending a 640x360 15 fps camera and a "
        "tone, in another process on core 1. CPU is the recorders' process over wall time (100 % = one core).\n\n"
        "| recorded | CPU | CPU per call | frames written per call per s | ticks late | file length / time "
        "recorded | memory per recording | upload per participant |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"{rows}\n\n"
        f"One recorded two-party call costs about {per_call:.0f} % of a core and {min(memory):.0f}–"
        f"{max(memory):.0f} MB (the first one also loads the codecs); one core kept {holds} recorded "
        "two-party calls in real time (under 1 % late ticks, under 85 % CPU). "
        f"{_starved(two_party)}"
        f"`MAX_RECORDINGS` defaults to {Settings.max_recordings} of the {holds} one core held here, "
        "leaving the instance's other work (signaling, the API) its share, and a margin for real cameras, "
        "whose pictures cost the encoder more than this synthetic one.\n"
        f"{END}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recording")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each measured step (default 12)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--participants", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.participants:
        asyncio.run(participants())
        return 0
    load = report.loadavg()
    print(f"recording: {args.seconds:g} s per step; load average {load}", flush=True)
    results = asyncio.run(run(args.seconds))
    if not args.no_write:
        command = report.command_line("bench.recording", argv)
        report.write_section(DOC, START, END, section(results, command, args.seconds, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
