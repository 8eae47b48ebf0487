"""Audio plumbing shared by every part: WAV in/out, resampling (soxr), 20 ms framing, G.711.

All PCM in Hotline is signed 16-bit little-endian mono unless a name says otherwise.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from app.events import FRAME_MS, SAMPLE_WIDTH_BYTES, AudioChunk


class AudioFormatError(ValueError):
    """A file or buffer is not audio Hotline can use; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Pcm:
    """A whole mono s16le buffer and its rate."""

    data: bytes
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        return len(self.data) / SAMPLE_WIDTH_BYTES / self.sample_rate_hz


def read_wav(path: Path, *, mix_to_mono: bool = True) -> Pcm:
    """Read a 16-bit PCM WAV. Stereo is mixed down when ``mix_to_mono``; anything else raises."""
    if not path.exists():
        raise AudioFormatError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioFormatError(f"{path}: empty file")
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width != SAMPLE_WIDTH_BYTES:
        raise AudioFormatError(
            f"{path}: {8 * width}-bit samples; Hotline needs 16-bit PCM "
            f"(convert with: sox {path.name} -b 16 out.wav)"
        )
    if channels != 1:
        if not mix_to_mono:
            raise AudioFormatError(f"{path}: {channels} channels; expected mono")
        samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).astype(np.int32)
        frames = samples.mean(axis=1).astype("<i2").tobytes()
    if not frames:
        raise AudioFormatError(f"{path}: no audio frames")
    return Pcm(frames, rate)


def write_wav(path: Path, pcm: bytes, sample_rate_hz: int, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(SAMPLE_WIDTH_BYTES)
        wav.setframerate(sample_rate_hz)
        wav.writeframes(pcm)


def resample(pcm: bytes, from_hz: int, to_hz: int) -> bytes:
    """Resample a whole mono s16le buffer (soxr, high quality)."""
    if from_hz == to_hz or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    out = soxr.resample(samples, from_hz, to_hz, quality="HQ")
    return np.asarray(out, dtype="<i2").tobytes()


class StreamResampler:
    """Resample a stream chunk by chunk without clicks at chunk edges (soxr stream)."""

    def __init__(self, from_hz: int, to_hz: int) -> None:
        self.from_hz = from_hz
        self.to_hz = to_hz
        self._rs = None if from_hz == to_hz else soxr.ResampleStream(from_hz, to_hz, 1, "int16")

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        if self._rs is None:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2")
        return bytes(self._rs.resample_chunk(samples, last=last).astype("<i2").tobytes())


def frames(pcm: bytes, sample_rate_hz: int, frame_ms: int = FRAME_MS, start_ms: int = 0,
           pad_last: bool = True) -> Iterator[AudioChunk]:
    """Cut a buffer into ``frame_ms`` chunks; the last one is zero-padded when ``pad_last``."""
    step = sample_rate_hz * frame_ms // 1000 * SAMPLE_WIDTH_BYTES
    ts = start_ms
    for offset in range(0, len(pcm), step):
        piece = pcm[offset : offset + step]
        if len(piece) < step:
            if not pad_last:
                break
            piece = piece + b"\x00" * (step - len(piece))
        yield AudioChunk(piece, sample_rate_hz, ts)
        ts += frame_ms


def silence(duration_ms: int, sample_rate_hz: int) -> bytes:
    return b"\x00" * (sample_rate_hz * duration_ms // 1000 * SAMPLE_WIDTH_BYTES)


def rms_dbfs(pcm: bytes) -> float:
    """Level of a buffer in dBFS (-inf for digital silence)."""
    if not pcm:
        return float("-inf")
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    rms = float(np.sqrt(np.mean(samples**2)))
    return float("-inf") if rms == 0 else 20.0 * float(np.log10(rms / 32768.0))
