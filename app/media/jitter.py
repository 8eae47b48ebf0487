"""Adaptive jitter buffer with loss concealment, for 8 kHz s16 mono G.711 audio.

Packets are put in by RTP timestamp (any ptime: 10, 20, 30 ms... are cut into 20 ms frames)
and taken out one 20 ms frame per playout tick. The playout point trails the newest audio by a
target delay that follows the measured interarrival jitter (RFC 3550 estimator): twice the
jitter plus one frame, between ``min_delay_ms`` and ``max_delay_ms``. When the buffer holds
more than the target plus a margin, a frame is dropped (the delay shrinks back); a missing frame
is concealed by repeating the last one at a falling level, then silence. A timestamp jump
(new talk spurt after silence suppression, or a new SSRC) re-anchors the playout point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_BYTES = FRAME_SAMPLES * 2
CONCEAL_FRAMES = 3  # repeat the last frame at most this many times (-6 dB each), then silence
_SILENCE = bytes(FRAME_BYTES)


@dataclass(slots=True)
class JitterStats:
    frames_out: int = 0
    concealed: int = 0  # frames made up for missing audio
    late: int = 0  # packets that arrived after their playout time
    dropped: int = 0  # frames dropped to shrink the delay
    duplicates: int = 0
    resyncs: int = 0


class JitterBuffer:
    def __init__(self, *, min_delay_ms: int = 40, max_delay_ms: int = 300,
                 frame_ms: int = 20) -> None:
        self.min_frames = max(1, min_delay_ms // frame_ms)
        self.max_frames = max(self.min_frames, max_delay_ms // frame_ms)
        self.frame_ms = frame_ms
        self.stats = JitterStats()
        self._frames: dict[int, bytearray] = {}  # frame index -> PCM (partially filled)
        self._filled: dict[int, int] = {}
        self._base_ts: int | None = None  # RTP timestamp of frame index 0
        self._next: int | None = None  # next frame index to play
        self._newest = -1
        self._last = _SILENCE
        self._missing_run = 0
        self._playing = False  # a real frame went out since the last (re)start
        self._jitter_frames = 0.0

    @property
    def target_frames(self) -> int:
        wanted = int(2 * self._jitter_frames + 1.999)
        return min(self.max_frames, max(self.min_frames, wanted))

    @property
    def depth_frames(self) -> int:
        return 0 if self._next is None else max(0, self._newest - self._next + 1)

    def set_jitter(self, jitter_ms: float) -> None:
        """The current interarrival jitter estimate (from ``ReceptionStats``)."""
        self._jitter_frames = jitter_ms / self.frame_ms

    def reset(self) -> None:
        """New source (SSRC change) or new stream: forget everything queued."""
        self._frames.clear()
        self._filled.clear()
        self._base_ts = None
        self._next = None
        self._newest = -1
        self._playing = False
        self.stats.resyncs += 1

    def push(self, timestamp: int, pcm: bytes) -> None:
        if self._base_ts is None:
            self._base_ts = timestamp
        offset = (timestamp - self._base_ts) & 0xFFFFFFFF
        if offset >= 0x80000000:
            offset -= 0x100000000  # before the base (reordered first packets)
        index, within = divmod(offset, FRAME_SAMPLES)
        if self._next is not None and index > self._newest + 50 + self.max_frames:
            self.reset()  # a big jump forward: new talk spurt or a restarted sender
            self.push(timestamp, pcm)
            return
        if self._next is not None and index < self._next:
            if index < self._next - 50 or self._missing_run > CONCEAL_FRAMES:
                # far behind, or audio resuming after an underrun: the sender's clock moved
                self.reset()
                self.push(timestamp, pcm)
                return
            self.stats.late += 1
            return
        pos = 0
        while pos < len(pcm):
            frame = self._frames.get(index)
            if frame is None:
                frame = self._frames[index] = bytearray(FRAME_BYTES)
                self._filled[index] = 0
            take = min(len(pcm) - pos, FRAME_BYTES - 2 * within)
            if self._filled[index] >= FRAME_BYTES and within == 0:
                self.stats.duplicates += 1
            frame[2 * within:2 * within + take] = pcm[pos:pos + take]
            self._filled[index] = min(FRAME_BYTES, self._filled[index] + take)
            self._newest = max(self._newest, index)
            pos += take
            index, within = index + 1, 0
        if self._next is None:
            self._next = self._newest - self.target_frames + 1

    def pop(self) -> bytes | None:
        """The next 20 ms frame to play; None before the stream started."""
        if self._next is None:
            return None
        while self.depth_frames > self.target_frames + 2:  # too much delay: drop a frame
            self._frames.pop(self._next, None)
            self._filled.pop(self._next, None)
            self._next += 1
            self.stats.dropped += 1
        frame = self._frames.pop(self._next, None)
        self._filled.pop(self._next, None)
        self._next += 1
        self.stats.frames_out += 1
        if frame is not None:
            self._missing_run = 0
            self._playing = True
            self._last = bytes(frame)
            return self._last
        if not self._playing:
            return _SILENCE  # the initial playout delay, not a loss
        self.stats.concealed += 1
        self._missing_run += 1
        if self._missing_run > CONCEAL_FRAMES or self._last is _SILENCE:
            return _SILENCE
        samples = np.frombuffer(self._last, dtype="<i2") >> self._missing_run
        return samples.astype("<i2").tobytes()
