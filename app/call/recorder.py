"""Stereo call recording (caller left, bot/agent right) written to disk as the call goes.

The caller's audio arrives continuously (20 ms per chunk, silence included), so its position
is its byte count; the bot's audio comes in bursts, so each chunk is placed at the moment it
was queued for sending, with silence in between. ``take()`` (event loop) hands over the audio
both sides have covered so far as interleaved stereo; ``append()`` (a worker thread) writes it
and patches the WAV header, so the file on disk is a valid WAV after every flush: a crash
keeps everything up to the last flush. While ``paused`` (a sensitive flow node collecting
a card number or a PIN) both channels record silence: the timeline stays true, the digits
and their read-back never reach the file.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

from app.events import SAMPLE_WIDTH_BYTES, AudioChunk


class Recorder:
    def __init__(self, path: Path, sample_rate_hz: int, max_duration_s: float) -> None:
        self.path = path
        self.sample_rate_hz = sample_rate_hz
        self._caller = bytearray()
        self._bot = bytearray()
        self._t0 = time.monotonic()
        self._max_bytes = int(max_duration_s * sample_rate_hz) * SAMPLE_WIDTH_BYTES
        self._written_samples = 0  # per channel, on disk
        self._taken_bytes = 0  # per channel, handed to append()
        self._file: BinaryIO | None = None
        self._wav: wave.Wave_write | None = None
        self.paused = False  # silence is kept instead of audio (a sensitive node)

    # -- event loop side
    def caller(self, chunk: AudioChunk) -> None:
        if self._taken_bytes + len(self._caller) < self._max_bytes:
            self._caller += bytes(len(chunk.pcm)) if self.paused else chunk.pcm

    def bot(self, chunk: AudioChunk) -> None:
        if self.paused:  # the timeline keeps silence where the bot spoke
            return
        at = self._offset_bytes() - self._taken_bytes
        if self._taken_bytes + at >= self._max_bytes:
            return
        if at > len(self._bot):
            self._bot += b"\x00" * (at - len(self._bot))
        self._bot += chunk.pcm

    def take(self, final: bool = False) -> bytes:
        """Interleaved stereo for the time both channels cover (all of it when ``final``)."""
        n = max(len(self._caller), len(self._bot)) if final else len(self._caller)
        n -= n % SAMPLE_WIDTH_BYTES
        if n == 0:
            return b""
        stereo = np.zeros((n // SAMPLE_WIDTH_BYTES, 2), dtype="<i2")
        left = np.frombuffer(bytes(self._caller[:n]), dtype="<i2")
        right = np.frombuffer(bytes(self._bot[:n]), dtype="<i2")
        stereo[: len(left), 0] = left
        stereo[: len(right), 1] = right
        del self._caller[:n]
        del self._bot[:n]
        self._taken_bytes += n
        return stereo.tobytes()

    @property
    def duration_s(self) -> float:
        return self._written_samples / self.sample_rate_hz

    def _offset_bytes(self) -> int:
        samples = int((time.monotonic() - self._t0) * self.sample_rate_hz)
        return samples * SAMPLE_WIDTH_BYTES

    # -- worker thread side (blocking file I/O)
    def open(self) -> None:
        """Create the file (a valid, empty WAV); raises OSError if it cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("wb")
        wav = wave.open(self._file, "wb")
        wav.setnchannels(2)
        wav.setsampwidth(SAMPLE_WIDTH_BYTES)
        wav.setframerate(self.sample_rate_hz)
        wav.writeframes(b"")
        self._wav = wav
        self._file.flush()

    def append(self, stereo: bytes) -> None:
        if self._wav is None or self._file is None or not stereo:
            return
        self._wav.writeframes(stereo)  # patches the header's sizes
        self._file.flush()
        self._written_samples += len(stereo) // (2 * SAMPLE_WIDTH_BYTES)

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None
        if self._file is not None:
            self._file.close()
            self._file = None


def wav_duration_s(path: Path) -> float | None:
    """The duration of a WAV on disk, None if it is not a readable WAV."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (OSError, wave.Error, EOFError, ZeroDivisionError):
        return None
