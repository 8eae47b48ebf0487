"""Synthetic test audio and the measurements tests make on what comes back."""

from __future__ import annotations

import numpy as np


def tone(freq_hz: float, seconds: float, rate_hz: int = 16_000, level: float = 0.3) -> bytes:
    """A sine tone, mono s16le."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (level * 32767 * np.sin(2 * np.pi * freq_hz * t)).astype("<i2").tobytes()


def dominant_hz(pcm: bytes, rate_hz: int = 16_000) -> float:
    """The strongest frequency in ``pcm``."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate_hz / len(samples))


def loud_ms(pcm: bytes, rate_hz: int = 16_000, threshold: float = 1000.0) -> int:
    """How much of ``pcm`` (in 20 ms frames) carries real signal (RMS above ``threshold``)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    step = rate_hz // 50
    frames = samples[: len(samples) // step * step].reshape(-1, step)
    if not len(frames):
        return 0
    return int(np.sum(np.sqrt(np.mean(frames**2, axis=1)) > threshold)) * 20
