"""`hotline say`, run as a user runs it: a WAV to play, or a clear error and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.media.audio import read_wav, rms_dbfs
from app.settings import PROJECT_ROOT
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

pytestmark = needs(have_espeak(), "espeak-ng")


def hotline_say(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "say", *args], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_say_writes_a_mandarin_wav_at_the_asked_rate(tmp_path: Path) -> None:
    out = tmp_path / "greeting.wav"
    result = hotline_say(
        tmp_path, "您好，欢迎致电", "--locale", "zh", "-o", str(out), "--rate-hz", "8000"
    )
    assert result.returncode == 0, result.stderr
    pcm = read_wav(out)
    assert pcm.sample_rate_hz == 8000
    assert 1.0 < pcm.duration_s < 6.0
    assert rms_dbfs(pcm.data) > -35
    assert "8000 Hz" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hello", "--locale", "fr"], "error: no voice for locale 'fr'"),
        (["", "--locale", "en"], "error: nothing to say"),
        (["😀😀", "--locale", "zh"], "error: text has no letters or digits"),
        (["hello", "--rate-hz", "100"], "error: sample rate 100 Hz out of range"),
    ],
)
def test_say_refuses_bad_input_with_exit_code_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out.wav"
    result = hotline_say(tmp_path, *args, "-o", str(out))
    assert result.returncode == 2
    assert message in result.stderr
    assert not out.exists()
