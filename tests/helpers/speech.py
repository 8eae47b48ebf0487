"""Test audio made with espeak-ng (robotic, but real speech the real decoder can hear)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from app.media.audio import Pcm, read_wav, resample, write_wav

KO_MODEL_LOCALE = "ko"


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_pcm(text: str, voice: str, sample_rate_hz: int = 16_000, wpm: int = 150,
               tmp_dir: Path | None = None) -> Pcm:
    """Speak ``text`` with espeak-ng and return mono s16le PCM at ``sample_rate_hz``."""
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), text],
            check=True, capture_output=True,
        )
        pcm = read_wav(raw)
    return Pcm(resample(pcm.data, pcm.sample_rate_hz, sample_rate_hz), sample_rate_hz)


def espeak_wav(path: Path, text: str, voice: str, sample_rate_hz: int = 16_000,
               wpm: int = 150, lead_silence_s: float = 0.3, tail_silence_s: float = 0.8) -> Path:
    """Write a WAV of ``text`` with silence around it (so endpointing has something to see)."""
    pcm = espeak_pcm(text, voice, sample_rate_hz, wpm)
    pad = lambda s: b"\x00" * (int(sample_rate_hz * s) * 2)  # noqa: E731
    write_wav(path, pad(lead_silence_s) + pcm.data + pad(tail_silence_s), sample_rate_hz)
    return path
