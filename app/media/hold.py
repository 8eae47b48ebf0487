"""Hold audio: a soft, slow two-note chime, generated (no music file to license)."""

from __future__ import annotations

import numpy as np

from app.events import FRAME_MS, AudioChunk

_NOTES_HZ = (523.25, 659.25)  # C5, E5
_NOTE_S = 0.6
_CYCLE_S = 3.0
_LEVEL = 0.08


class HoldMusic:
    def __init__(self, sample_rate_hz: int) -> None:
        self.sample_rate_hz = sample_rate_hz
        n = int(_CYCLE_S * sample_rate_hz)
        t = np.arange(n) / sample_rate_hz
        wave = np.zeros(n)
        for i, hz in enumerate(_NOTES_HZ):
            start = i * _NOTE_S
            mask = (t >= start) & (t < start + _NOTE_S)
            local = t[mask] - start
            envelope = np.exp(-4.0 * local)
            wave[mask] += np.sin(2 * np.pi * hz * local) * envelope
        self._cycle = (wave * _LEVEL * 32767).astype("<i2").tobytes()
        self._step = sample_rate_hz * FRAME_MS // 1000 * 2
        self._pos = 0
        self._ts_ms = 0

    def next_chunk(self) -> AudioChunk:
        end = self._pos + self._step
        piece = self._cycle[self._pos : end]
        if len(piece) < self._step:
            end = self._step - len(piece)
            piece += self._cycle[:end]
        self._pos = end % len(self._cycle)
        self._ts_ms += FRAME_MS
        return AudioChunk(piece, self.sample_rate_hz, self._ts_ms)
