"""Voice activity per 20 ms frame (webrtcvad), for chunks of any length."""

from __future__ import annotations

import webrtcvad

from app.events import SAMPLE_WIDTH_BYTES

VAD_RATES_HZ = (8_000, 16_000, 32_000, 48_000)
VAD_FRAME_MS = 20


class FrameVad:
    """Splits a stream into 20 ms frames (carrying remainders) and says which are voiced.

    Thread-confined: used only by the decoder job of one stream.
    """

    def __init__(self, sample_rate_hz: int, aggressiveness: int) -> None:
        if sample_rate_hz not in VAD_RATES_HZ:
            raise ValueError(
                f"sample rate {sample_rate_hz} Hz not supported by the VAD "
                f"(use one of {', '.join(map(str, VAD_RATES_HZ))})"
            )
        self._vad = webrtcvad.Vad(aggressiveness)
        self._rate = sample_rate_hz
        self._frame_bytes = sample_rate_hz * VAD_FRAME_MS // 1000 * SAMPLE_WIDTH_BYTES
        self._rest = b""
        self._last = False

    def voiced(self, pcm: bytes) -> bool:
        """Whether the majority of the complete frames in ``pcm`` (plus carry-over) is voiced."""
        data = self._rest + pcm
        n_frames = len(data) // self._frame_bytes
        self._rest = data[n_frames * self._frame_bytes :]
        if n_frames == 0:
            return self._last
        size = self._frame_bytes
        hits = sum(
            self._vad.is_speech(data[i * size : (i + 1) * size], self._rate)
            for i in range(n_frames)
        )
        self._last = 2 * hits >= n_frames
        return self._last
