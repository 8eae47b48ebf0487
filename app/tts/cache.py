"""Prompt cache on disk: rendered speech keyed by (text, voice, rate wpm, sample rate).

One file per entry, ``<sha256 of the key>.pcm``: a header line (magic, sample rate, byte
count, SHA-256 of the audio) then the PCM. Written to a temporary file in the same folder and
renamed (atomic on POSIX), so a crash never leaves a half-written entry under the real name.
A file that does not parse or whose checksum fails is reported as corrupt and re-rendered.
These functions block: callers run them in a thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from app.media.audio import Pcm

MAGIC = "hotline-tts-1"
# Bump when the text preparation or the engine output changes, so old entries are not served.
RENDER_VERSION = "espeak-ng+pypinyin-1"


def cache_key(text: str, voice: str, rate_wpm: int, sample_rate_hz: int) -> str:
    key = json.dumps([RENDER_VERSION, text, voice, rate_wpm, sample_rate_hz], ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()


def encode_entry(pcm: Pcm) -> bytes:
    digest = hashlib.sha256(pcm.data).hexdigest()
    header = f"{MAGIC} {pcm.sample_rate_hz} {len(pcm.data)} {digest}\n"
    return header.encode("ascii") + pcm.data


def decode_entry(blob: bytes) -> Pcm:
    """Parse one entry; raise ``ValueError`` saying what is wrong with it."""
    head, sep, data = blob.partition(b"\n")
    if not sep:
        raise ValueError("no header line")
    fields = head.decode("ascii", errors="replace").split(" ")
    if len(fields) != 4 or fields[0] != MAGIC:
        raise ValueError(f"bad header {head[:60]!r}")
    try:
        rate_hz, n_bytes = int(fields[1]), int(fields[2])
    except ValueError as exc:
        raise ValueError(f"bad header numbers {head[:60]!r}") from exc
    if len(data) != n_bytes:
        raise ValueError(f"{len(data)} bytes of audio, header says {n_bytes}")
    if hashlib.sha256(data).hexdigest() != fields[3]:
        raise ValueError("audio checksum mismatch")
    return Pcm(data, rate_hz)


class PromptCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.pcm"

    def load(self, key: str) -> Pcm | None:
        """The cached audio, or ``None`` when absent. Corrupt entries raise ``ValueError``."""
        path = self.path_for(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return decode_entry(blob)
        except ValueError as exc:
            raise ValueError(f"corrupt cache entry {path}: {exc}") from exc

    def store(self, key: str, pcm: Pcm) -> Path:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pcm")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(encode_entry(pcm))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
