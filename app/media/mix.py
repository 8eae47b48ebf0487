"""Mixing 16-bit PCM streams: a supervisor's voice into a call's audio, two sides into one.

``mix`` adds s16le buffers sample by sample with clipping (numpy, int32 in between).
``SampleFifo`` holds one source's audio between its arrival and the frame it is mixed into
(bounded: a source that runs ahead loses its oldest audio, never grows). ``TwoWayMix`` turns
two sources (caller and agent) into one stream of 20 ms frames as they arrive: a frame goes
out when both sides have one, or when one side is more than ``lag_frames`` ahead (the
other is silent or gone), so the mix follows whichever side's clock is running.
"""

from __future__ import annotations

import numpy as np

from app.events import FRAME_MS, SAMPLE_WIDTH_BYTES

S16_MIN, S16_MAX = -32768, 32767


def mix(*buffers: bytes) -> bytes:
    """The sum of s16le ``buffers`` with clipping, as long as the longest (shorter ones are
    padded with silence)."""
    if not buffers:
        return b""
    if len(buffers) == 1:
        return buffers[0]
    n = max(len(b) for b in buffers) // SAMPLE_WIDTH_BYTES
    total = np.zeros(n, dtype=np.int32)
    for buf in buffers:
        samples = np.frombuffer(buf[: len(buf) - len(buf) % SAMPLE_WIDTH_BYTES], dtype="<i2")
        total[: len(samples)] += samples
    return bytes(np.clip(total, S16_MIN, S16_MAX).astype("<i2").tobytes())


class SampleFifo:
    """Bytes of one mono s16le source, bounded to ``max_ms`` (the oldest dropped)."""

    def __init__(self, sample_rate_hz: int, max_ms: int = 200) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.max_bytes = sample_rate_hz * max_ms // 1000 * SAMPLE_WIDTH_BYTES
        self.dropped_bytes = 0
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def push(self, pcm: bytes) -> None:
        self._buf += pcm
        over = len(self._buf) - self.max_bytes
        if over > 0:
            over += over % SAMPLE_WIDTH_BYTES
            del self._buf[:over]
            self.dropped_bytes += over

    def take(self, n_bytes: int) -> bytes:
        """Up to ``n_bytes`` (fewer when fewer are there; ``b""`` when empty)."""
        n_bytes -= n_bytes % SAMPLE_WIDTH_BYTES
        out = bytes(self._buf[:n_bytes])
        del self._buf[:n_bytes]
        return out

    def clear(self) -> None:
        self._buf.clear()

    def mix_into(self, pcm: bytes) -> bytes:
        """``pcm`` with as much of this source mixed in as it is long (nothing if empty)."""
        if not self._buf:
            return pcm
        return mix(pcm, self.take(len(pcm)))


class TwoWayMix:
    """Two sources at one rate mixed into 20 ms frames as they arrive (see the module doc)."""

    def __init__(self, sample_rate_hz: int, lag_frames: int = 3) -> None:
        self.frame_bytes = sample_rate_hz * FRAME_MS // 1000 * SAMPLE_WIDTH_BYTES
        self.sides = (SampleFifo(sample_rate_hz), SampleFifo(sample_rate_hz))
        self.lag_bytes = lag_frames * self.frame_bytes

    def push(self, side: int, pcm: bytes) -> list[bytes]:
        """Add ``pcm`` from side 0 or 1; the frames now ready, mixed."""
        self.sides[side].push(pcm)
        a, b = self.sides
        out: list[bytes] = []
        while True:
            both = len(a) >= self.frame_bytes and len(b) >= self.frame_bytes
            if not (both or len(a) > self.lag_bytes or len(b) > self.lag_bytes):
                return out
            out.append(mix(a.take(self.frame_bytes), b.take(self.frame_bytes)))
