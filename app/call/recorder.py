"""Stereo call recording: caller on the left channel, bot on the right, on one timeline."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from app.events import SAMPLE_WIDTH_BYTES, AudioChunk
from app.media.audio import write_wav


class Recorder:
    """Collects both directions; the bot side is placed by wall-clock time since the start.

    The caller's audio arrives continuously (20 ms per chunk, silence included), so its
    position is its byte count; the bot's audio comes in bursts, so each chunk is placed at
    the moment it was queued for sending, with silence in between.
    """

    def __init__(self, sample_rate_hz: int, max_duration_s: float) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._caller = bytearray()
        self._bot = bytearray()
        self._t0 = time.monotonic()
        self._max_bytes = int(max_duration_s * sample_rate_hz) * SAMPLE_WIDTH_BYTES

    def _offset_bytes(self) -> int:
        samples = int((time.monotonic() - self._t0) * self.sample_rate_hz)
        return samples * SAMPLE_WIDTH_BYTES

    def caller(self, chunk: AudioChunk) -> None:
        if len(self._caller) < self._max_bytes:
            self._caller += chunk.pcm

    def bot(self, chunk: AudioChunk, lead_ms: float = 0.0) -> None:
        """``lead_ms``: how far ahead of real time the chunk was queued (it plays later)."""
        if len(self._bot) >= self._max_bytes:
            return
        at = self._offset_bytes() + int(lead_ms * self.sample_rate_hz / 1000) * SAMPLE_WIDTH_BYTES
        if at > len(self._bot):
            self._bot += b"\x00" * (at - len(self._bot))
        self._bot += chunk.pcm

    @property
    def duration_s(self) -> float:
        n = max(len(self._caller), len(self._bot)) // SAMPLE_WIDTH_BYTES
        return n / self.sample_rate_hz

    def save(self, path: Path) -> float:
        """Write the stereo WAV; returns its duration in seconds."""
        n = max(len(self._caller), len(self._bot)) // SAMPLE_WIDTH_BYTES
        stereo = np.zeros((n, 2), dtype="<i2")
        left = np.frombuffer(bytes(self._caller), dtype="<i2")
        right = np.frombuffer(bytes(self._bot), dtype="<i2")
        stereo[: len(left), 0] = left
        stereo[: len(right), 1] = right
        write_wav(path, stereo.tobytes(), self.sample_rate_hz, channels=2)
        return n / self.sample_rate_hz
