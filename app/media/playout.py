"""Paced playout: the one implementation of "send 20 ms of audio every 20 ms" in Hotline.

``PlayoutBuffer`` holds the audio waiting to go out on one leg (bot audio for a caller, the
simulated caller's WAV in ``hotline call``, agent audio on a bridged leg): bounded by the
producer's backpressure (``wait_below``), flushable at once (barge-in), counting *gaps*
(audio that stopped and resumed within ``GAP_WINDOW_S``: the producer fell behind real
time). ``Pacer`` is the real-time clock that says when the next frame is due and counts late
frames. A transport combines them:

- WebRTC (aiortc pulls): ``recv()`` awaits ``pacer.tick()`` then ``buffer.pop()``;
- RTP (we push): a task loops ``await pacer.tick()``, ``buffer.pop()``, encode, send.

Both are loop-side objects (not thread-safe); ``pop`` and ``enqueue`` are O(1) per frame.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from app.events import FRAME_MS, SAMPLE_WIDTH_BYTES

GAP_WINDOW_S = 0.2  # silence shorter than this inside bot audio is a gap


@dataclass(slots=True)
class PlayoutStats:
    frames_sent: int = 0  # every frame handed to the wire, silence included
    audio_frames_sent: int = 0  # frames that carried queued audio
    gaps: int = 0  # audio resumed less than GAP_WINDOW_S after it ran dry
    flushed_ms: int = 0  # dropped by flush() (barge-in)
    late_frames: int = 0  # frames sent more than one frame late (filled by the Pacer)


class PlayoutBuffer:
    """Frames of s16 mono PCM at ``sample_rate_hz`` waiting to be sent, oldest first."""

    def __init__(self, sample_rate_hz: int, frame_ms: int = FRAME_MS,
                 on_gap: Callable[[], None] | None = None) -> None:
        if sample_rate_hz <= 0 or frame_ms <= 0:
            raise ValueError("sample_rate_hz and frame_ms must be positive")
        self.sample_rate_hz = sample_rate_hz
        self.frame_ms = frame_ms
        self.frame_bytes = sample_rate_hz * frame_ms // 1000 * SAMPLE_WIDTH_BYTES
        self.stats = PlayoutStats()
        # loop time when the current run of audio started going out after silence
        # (turn latency: end of the caller's speech -> first bot audio on the wire)
        self.audio_started_at: float | None = None
        self._frames: deque[bytes] = deque()
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self._sending_audio = False
        self._silence_since = float("-inf")
        self._on_gap = on_gap
        self._silence = bytes(self.frame_bytes)

    @property
    def silence(self) -> bytes:
        """The very frame ``pop`` returns when nothing is queued (compare with ``is``)."""
        return self._silence

    # -- producer side
    @property
    def queued_ms(self) -> int:
        return len(self._frames) * self.frame_ms

    @property
    def closed(self) -> bool:
        return self._closed

    def enqueue(self, pcm: bytes) -> None:
        """Queue audio; split into frames, the last one zero-padded. Ignored once closed."""
        if self._closed or not pcm:
            return
        step = self.frame_bytes
        for offset in range(0, len(pcm), step):
            piece = pcm[offset : offset + step]
            if len(piece) < step:
                piece = piece + bytes(step - len(piece))
            self._frames.append(piece)
        self._room.clear()

    async def wait_below(self, max_queued_ms: int) -> None:
        """Backpressure: return once at most ``max_queued_ms`` is queued (or closed)."""
        while self.queued_ms > max_queued_ms and not self._closed:
            self._room.clear()
            await self._room.wait()

    def flush(self) -> int:
        """Drop everything queued (barge-in); returns the ms dropped. Not a gap."""
        dropped_ms = self.queued_ms
        self._frames.clear()
        self.stats.flushed_ms += dropped_ms
        self._sending_audio = False
        self._silence_since = float("-inf")
        self._room.set()
        return dropped_ms

    def close(self) -> None:
        self._closed = True
        self._frames.clear()
        self._room.set()

    # -- wire side
    def pop(self, now: float) -> bytes:
        """The next frame to send at loop time ``now``: queued audio, else silence."""
        self.stats.frames_sent += 1
        if self._frames:
            pcm = self._frames.popleft()
            self.stats.audio_frames_sent += 1
            if not self._sending_audio:
                self._sending_audio = True
                self.audio_started_at = now
                if now - self._silence_since < GAP_WINDOW_S:
                    self.stats.gaps += 1
                    if self._on_gap is not None:
                        self._on_gap()
            self._room.set()
            return pcm
        if self._sending_audio:
            self._silence_since = now
        self._sending_audio = False
        return self._silence


class Pacer:
    """When is frame N due? ``await tick()`` sleeps until then and returns the frame index.

    The schedule is anchored at the first tick, so sleeping late never accumulates drift; a
    frame sent more than one frame period late is counted (``late_frames``), and after a
    stall of more than ``max_catch_up_frames`` the schedule is re-anchored instead of
    bursting the backlog out at once.
    """

    def __init__(self, frame_ms: int = FRAME_MS, *, max_catch_up_frames: int = 10,
                 on_late: Callable[[], None] | None = None) -> None:
        self.frame_s = frame_ms / 1000
        self.max_catch_up_frames = max_catch_up_frames
        self.late_frames = 0
        self._on_late = on_late
        self._start: float | None = None
        self._index = -1

    @property
    def index(self) -> int:
        return self._index

    async def tick(self) -> int:
        loop = asyncio.get_running_loop()
        self._index += 1
        if self._start is None:
            self._start = loop.time()
            return self._index
        due = self._start + self._index * self.frame_s
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late_s = loop.time() - due
        if late_s > self.frame_s:
            self.late_frames += 1
            if self._on_late is not None:
                self._on_late()
            if late_s > self.max_catch_up_frames * self.frame_s:
                self._start = loop.time() - self._index * self.frame_s  # re-anchor
        return self._index
