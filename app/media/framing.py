"""Inbound framing: whatever a transport decodes -> the call's 20 ms ``AudioChunk``s.

Every leg hands the session the same thing: mono s16 PCM at the call rate (16 kHz) in 20 ms
chunks stamped with their media time. ``PcmFramer`` does it for plain mono s16 PCM at any rate
(an RTP leg after its G.711 decoder, a test pipe); ``InboundFramer`` does it for the
``av.AudioFrame``s aiortc's decoders give (any rate, layout, s16 or float), by way of a
``PcmFramer``. ``pcm_frame`` goes the other way: PCM -> ``av.AudioFrame`` for aiortc senders.

Loop-side objects (not thread-safe); resampling keeps its state across pushes (soxr stream),
so chunk edges do not click.
"""

from __future__ import annotations

import fractions

import av
import numpy as np

from app.events import CALL_SAMPLE_RATE_HZ, FRAME_MS, SAMPLE_WIDTH_BYTES, AudioChunk
from app.media.audio import StreamResampler


class PcmFramer:
    """Mono s16 PCM at any rate -> ``AudioChunk``s of ``FRAME_MS`` at ``sample_rate_hz``.

    ``push(pcm, from_hz)`` returns the whole chunks now available; the remainder waits for
    the next push. A change of input rate restarts the resampler (a codec switch mid-call).
    """

    def __init__(self, sample_rate_hz: int = CALL_SAMPLE_RATE_HZ) -> None:
        if sample_rate_hz <= 0:
            raise ValueError("sample_rate_hz must be positive")
        self.sample_rate_hz = sample_rate_hz
        self.chunk_bytes = sample_rate_hz * FRAME_MS // 1000 * SAMPLE_WIDTH_BYTES
        self._resampler: StreamResampler | None = None
        self._buffer = bytearray()
        self._ts_ms = 0

    @property
    def media_ts_ms(self) -> int:
        """Media time of the next chunk (ms of caller audio framed so far)."""
        return self._ts_ms

    def push(self, pcm: bytes, from_hz: int) -> list[AudioChunk]:
        if from_hz <= 0:
            raise ValueError(f"input sample rate must be positive, got {from_hz}")
        if len(pcm) % SAMPLE_WIDTH_BYTES:
            raise ValueError(f"s16 PCM must have an even number of bytes, got {len(pcm)}")
        if self._resampler is None or self._resampler.from_hz != from_hz:
            self._resampler = StreamResampler(from_hz, self.sample_rate_hz)
        self._buffer += self._resampler.process(pcm)
        step = self.chunk_bytes
        chunks = []
        while len(self._buffer) >= step:
            chunks.append(AudioChunk(bytes(self._buffer[:step]), self.sample_rate_hz, self._ts_ms))
            del self._buffer[:step]
            self._ts_ms += FRAME_MS
        return chunks


class InboundFramer:
    """``av.AudioFrame`` (any rate, layout, s16/flt) -> mono 16 kHz 20 ms ``AudioChunk``s."""

    def __init__(self, sample_rate_hz: int = CALL_SAMPLE_RATE_HZ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._pcm = PcmFramer(sample_rate_hz)

    def push(self, frame: av.AudioFrame) -> list[AudioChunk]:
        return self._pcm.push(to_mono_s16(frame), frame.sample_rate)

    @property
    def media_ts_ms(self) -> int:
        return self._pcm.media_ts_ms


def to_mono_s16(frame: av.AudioFrame) -> bytes:
    """The frame's samples as mono s16le (channels averaged)."""
    samples = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.name == "s16":  # what aiortc's Opus and G.711 decoders give: integer math
        if channels == 1:
            return bytes(samples.astype("<i2", copy=False).tobytes())
        wide = samples.reshape(-1, channels).astype(np.int32)
        return bytes((wide.sum(axis=1) // channels).astype("<i2").tobytes())
    if frame.format.is_planar:
        mixed = samples.astype(np.float64).mean(axis=0)
    else:
        mixed = samples.reshape(-1, channels).astype(np.float64).mean(axis=1)
    if frame.format.name.startswith("flt") or frame.format.name.startswith("dbl"):
        mixed = mixed * 32767.0
    return bytes(np.clip(mixed, -32768, 32767).astype("<i2").tobytes())


def pcm_frame(pcm: bytes, sample_rate_hz: int, pts: int) -> av.AudioFrame:
    """Mono s16 PCM as an ``av.AudioFrame`` stamped ``pts`` (in samples)."""
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // SAMPLE_WIDTH_BYTES)
    frame.planes[0].update(pcm)
    frame.pts = pts
    frame.sample_rate = sample_rate_hz
    frame.time_base = fractions.Fraction(1, sample_rate_hz)
    return frame
