"""``hotline call``: the key schedule parser, a bad WAV, and a whole call to an in-process app."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import yaml
from typer.testing import CliRunner

from app.call.caller import parse_dtmf_schedule
from app.cli import app
from app.media.audio import read_wav, write_wav
from tests.helpers.live import live_settings
from tests.helpers.tones import loud_ms


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures structlog to print to CliRunner's stderr, which is closed after
    the run; later tests in the process must not log into that closed file."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_dtmf_schedule_is_parsed_and_sorted() -> None:
    assert parse_dtmf_schedule("#@5.2, 1@3") == [("1", 3.0), ("#", 5.2)]
    assert parse_dtmf_schedule("") == []


@pytest.mark.parametrize(("text", "error"), [
    ("1", "bad DTMF item '1': expected KEY@SECONDS, e.g. 1@3.0"),
    ("12@3", "bad DTMF item '12@3': expected KEY@SECONDS, e.g. 1@3.0"),
    ("x@3", "bad DTMF item 'x@3': expected KEY@SECONDS, e.g. 1@3.0"),
    ("1@soon", "bad DTMF time in '1@soon': 'soon' is not a number"),
    ("1@-2", "bad DTMF time in '1@-2': must be >= 0"),
])
def test_bad_dtmf_schedule_says_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_dtmf_schedule(text)
    assert str(info.value) == error


def test_a_wav_in_the_wrong_format_is_a_clear_error(tmp_path: Path) -> None:
    eight_bit = tmp_path / "8bit.wav"
    with wave.open(str(eight_bit), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 8000)
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("not audio")
    runner = CliRunner()
    for path, words in ((eight_bit, "8-bit samples; Hotline needs 16-bit PCM"),
                        (not_wav, "not a PCM WAV file"),
                        (tmp_path / "missing.wav", "no such file")):
        result = runner.invoke(app, ["call", "--wav", str(path), "--server", "http://127.0.0.1:9"])
        assert result.exit_code == 1, result.output
        assert words in result.output


def test_a_bad_key_schedule_is_refused_before_calling(tmp_path: Path) -> None:
    ok = tmp_path / "ok.wav"
    write_wav(ok, bytes(3200), 16_000)
    result = CliRunner().invoke(app, ["call", "--wav", str(ok), "--dtmf", "1@later"])
    assert result.exit_code == 1
    assert "bad DTMF time" in result.output


def test_hotline_call_runs_a_whole_call_in_process(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = live_settings(tmp_path)
    config = tmp_path / "hotline.yaml"
    values = settings.model_dump(mode="json", exclude={"auth_bootstrap_token"})  # "****"
    config.write_text(yaml.safe_dump(values, allow_unicode=True))
    monkeypatch.setenv("HOTLINE_CONFIG", str(config))  # load_settings sets it; undone after
    wav = tmp_path / "caller.wav"
    write_wav(wav, bytes(16_000 * 2 * 2), 16_000)
    out = tmp_path / "bot.wav"
    result = CliRunner().invoke(app, [
        "call", "--wav", str(wav), "--dtmf", "1@4.0", "--config", str(config),
        "--out", str(out), "--grace-s", "8", "--timeout-s", "40",
    ])
    assert result.exit_code == 0, result.output
    assert "bot    : 안녕하세요" in result.output
    assert "key    : 1" in result.output
    assert "call ended: completed" in result.output
    assert "hung up by server" in result.output
    assert loud_ms(read_wav(out).data) > 1500
