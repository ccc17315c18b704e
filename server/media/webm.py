"""The recording's file: WebM (VP8 video, Opus audio), written with PyAV cluster by cluster.

WebM plays in every browser the service supports without a plug-in, and both codecs are in
the PyAV wheel (libvpx, libopus), so nothing is installed besides `av`, which aiortc needs
anyway. The Matroska muxer closes a cluster at least every `CLUSTER_MS` and `flush_packets`
hands each one to the file at once: a process killed mid-way leaves a file that plays up to
its last cluster (no index: a player reads it from the start). A file closed normally gets its
duration and cues (seeking) at the end.

Every call is blocking (encoding): the recorder runs them in its own worker thread.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy
from av.audio.stream import AudioStream
from av.video.stream import VideoStream

from server.media.layout import HEIGHT, WIDTH, Image

FPS = 15
SAMPLE_RATE = 48_000
CLUSTER_MS = 1000
VIDEO_BIT_RATE = 600_000  # the whole grid: a few tiles at the participants' capped 400 kbps
AUDIO_BIT_RATE = 48_000
MS = Fraction(1, 1000)


class WebmWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = av.open(
            str(path),
            mode="w",
            format="webm",
            options={"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
        )
        video: VideoStream = self.container.add_stream("libvpx", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.bit_rate = VIDEO_BIT_RATE
        video.codec_context.time_base = MS
        # Real time: the fastest settings, one thread (an instance holds several recordings),
        # a key frame every two seconds so that any cluster is near a point to start playing from.
        video.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "threads": "1", "lag-in-frames": "0"}
        video.codec_context.gop_size = 2 * FPS
        audio: AudioStream = self.container.add_stream("libopus", rate=SAMPLE_RATE)
        audio.layout = "stereo"
        audio.bit_rate = AUDIO_BIT_RATE
        self.video, self.audio = video, audio
        self.last_video_ms = -1
        self.samples = 0  # audio samples written, per channel

    def write_video(self, image: Image, at_ms: int) -> None:
        """One frame of the grid at `at_ms` since the start; a frame not later than the last is skipped."""
        if at_ms <= self.last_video_ms:
            return
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = at_ms, MS
        self.last_video_ms = at_ms
        self.container.mux(self.video.encode(frame))

    def write_audio(self, pcm: numpy.ndarray) -> None:
        """Interleaved stereo s16 samples, shape (1, 2 * n), following the last written."""
        if pcm.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts, frame.time_base = self.samples, Fraction(1, SAMPLE_RATE)
        self.samples += pcm.shape[1] // 2
        self.container.mux(self.audio.encode(frame))

    @property
    def duration_s(self) -> float:
        return max(self.last_video_ms / 1000, self.samples / SAMPLE_RATE, 0.0)

    def close(self) -> None:
        """Flush both encoders and write the file's end (duration, cues)."""
        self.container.mux(self.video.encode(None))
        self.container.mux(self.audio.encode(None))
        self.container.close()
