"""Recorded prompts uploaded from the console: a studio recording said instead of the voice.

A recording belongs to one prompt text in one locale (``prompt_key``): when a call is to
say exactly that text (no caller data in it), ``TtsService`` plays the recording instead of
synthesizing. A text edited in a new flow version has no recording until one is uploaded
for the new text (the old one stays listed, removable).

Stored under ``<data_dir>/prompt-recordings/``: ``<key>.wav`` (mono 16-bit PCM at the
uploaded rate) and ``index.json`` (key -> locale, text, who, when, duration). Each write goes
to a temporary file renamed into place; the index is re-read when its mtime changes, so
every process of a cluster sees an upload. These functions block: callers use a thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import wavfile

from app.media.audio import Pcm, rms_dbfs, write_wav

INDEX = "index.json"
MAX_RECORDING_BYTES = 1_000_000  # under the server's body limit (http_max_body_bytes)
MAX_RECORDING_S, MIN_RECORDING_S = 30.0, 0.3
SILENT_DBFS = -60.0
MIN_RATE_HZ, MAX_RATE_HZ = 8_000, 48_000


def prompt_key(locale: str, text: str) -> str:
    """The recording slot of one prompt text in one locale."""
    return hashlib.sha256(f"{locale}\n{text.strip()}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Recording:
    key: str
    locale: str
    text: str
    by: str
    at: str
    duration_s: float
    sample_rate_hz: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _pcm16(samples: np.ndarray) -> np.ndarray:
    """Any WAV sample type scipy reads, as int16 (floats are -1..1, unsigned 8-bit is
    offset by 128)."""
    if samples.dtype == np.int16:
        return samples
    if samples.dtype == np.uint8:
        return ((samples.astype(np.int16) - 128) << 8).astype(np.int16)
    if np.issubdtype(samples.dtype, np.floating):
        return np.asarray(np.clip(samples, -1.0, 1.0) * 32767, dtype=np.int16)
    if samples.dtype == np.int32:  # 24- and 32-bit PCM: scipy left-justifies into int32
        return (samples >> 16).astype(np.int16)
    raise ValueError(f"{samples.dtype} samples are not supported")


def check_recording(blob: bytes) -> Pcm:
    """The upload as mono 16-bit PCM; ``ValueError`` saying what is wrong with it.

    Accepted: a WAV file (16-bit, 8-bit, 24/32-bit integer or float PCM, read with
    scipy), mono, 8-48 kHz, 0.3-30 s, not silent, at most ``MAX_RECORDING_BYTES``.
    """
    if len(blob) > MAX_RECORDING_BYTES:
        raise ValueError(f"{len(blob)} bytes: a recording is at most {MAX_RECORDING_BYTES}")
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ValueError("not a WAV file (no RIFF/WAVE header): export the recording as WAV")
    try:
        rate_hz, samples = wavfile.read(io.BytesIO(blob))
    except (ValueError, EOFError, OSError, struct.error, IndexError, TypeError) as exc:
        # scipy raises several kinds on a cut or malformed file
        raise ValueError(f"a broken WAV file: {exc or type(exc).__name__}") from None
    if samples.ndim != 1:
        raise ValueError(f"{samples.shape[1]} channels: a prompt is mono (mix it down first)")
    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise ValueError(f"sample rate {rate_hz} Hz out of range "
                         f"{MIN_RATE_HZ}..{MAX_RATE_HZ} Hz")
    pcm = Pcm(_pcm16(samples).astype("<i2").tobytes(), int(rate_hz))
    if pcm.duration_s > MAX_RECORDING_S:
        raise ValueError(f"{pcm.duration_s:.1f} s long: a prompt is at most "
                         f"{MAX_RECORDING_S:.0f} s")
    if pcm.duration_s < MIN_RECORDING_S:
        raise ValueError(f"{pcm.duration_s:.2f} s long: a prompt is at least "
                         f"{MIN_RECORDING_S} s")
    if rms_dbfs(pcm.data) < SILENT_DBFS:
        raise ValueError(f"silent (below {SILENT_DBFS:.0f} dBFS): nothing would be heard")
    return pcm


class RecordedPrompts:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._index: dict[str, Recording] = {}
        self._stamp: int | None = None

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}.wav"

    def _load(self) -> dict[str, Recording]:
        """The index, re-read when the file changed (another process uploaded)."""
        try:
            stamp = (self.directory / INDEX).stat().st_mtime_ns
        except FileNotFoundError:
            self._index, self._stamp = {}, None
            return self._index
        if stamp != self._stamp:
            raw = json.loads((self.directory / INDEX).read_text(encoding="utf-8"))
            self._index = {k: Recording(**v) for k, v in raw.items()}
            self._stamp = stamp
        return self._index

    def all(self) -> dict[str, Recording]:
        with self._lock:
            return dict(self._load())

    def find(self, locale: str, text: str) -> Path | None:
        """The recording to play for ``text`` in ``locale``, if one was uploaded."""
        key = prompt_key(locale, text)
        with self._lock:
            if key not in self._load():
                return None
        path = self.path_for(key)
        return path if path.is_file() else None

    def add(self, locale: str, text: str, pcm: Pcm, by: str, at: str) -> Recording:
        key = prompt_key(locale, text)
        found = Recording(key, locale, text.strip(), by, at, round(pcm.duration_s, 2),
                          pcm.sample_rate_hz)
        with self._lock:
            index = dict(self._load())
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".tmp-{key}.wav"
            write_wav(tmp, pcm.data, pcm.sample_rate_hz)
            os.replace(tmp, self.path_for(key))
            index[key] = found
            self._write(index)
        return found

    def remove(self, key: str) -> Recording | None:
        with self._lock:
            index = dict(self._load())
            gone = index.pop(key, None)
            if gone is not None:
                self._write(index)
                self.path_for(key).unlink(missing_ok=True)
        return gone

    def _write(self, index: dict[str, Recording]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({k: v.as_json() for k, v in index.items()}, f, ensure_ascii=False,
                      indent=1)
        os.replace(tmp, self.directory / INDEX)
        self._index, self._stamp = index, (self.directory / INDEX).stat().st_mtime_ns
