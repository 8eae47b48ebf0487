"""``hotline call``: the key schedule parser, a bad WAV, and a whole call to an in-process app."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import yaml
from typer.testing import CliRunner

from app.cli import app
from app.media.audio import read_wav, write_wav
from app.sim.caller import KeyPress, parse_dtmf_schedule
from tests.helpers.live import live_settings
from tests.helpers.tones import loud_ms

FLOW = Path(__file__).resolve().parent / "data" / "ko_webrtc.yaml"
ORDER_FLOW = Path(__file__).resolve().parent / "data" / "ko_order.yaml"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures structlog to print to CliRunner's stderr, which is closed after
    the run; later tests in the process must not log into that closed file."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_dtmf_schedule_is_parsed_in_the_order_written() -> None:
    assert parse_dtmf_schedule("1@menu, 4567#@MENU,*@12.5") == [
        KeyPress("1"), KeyPress("4567#"), KeyPress("*", 12.5)]
    assert parse_dtmf_schedule("#@5.2, 1@3") == [KeyPress("#", 5.2), KeyPress("1", 3.0)]
    assert parse_dtmf_schedule("") == []
    assert str(KeyPress("12")) == "12@menu" and str(KeyPress("1", 3.0)) == "1@3"


@pytest.mark.parametrize(("text", "error"), [
    ("1", "bad DTMF item '1': expected KEYS@SECONDS or KEYS@menu, e.g. 1@3.0 or 4567#@menu "
          "(keys: 0-9 * # A-D)"),
    ("@3", "bad DTMF item '@3': expected KEYS@SECONDS or KEYS@menu, e.g. 1@3.0 or 4567#@menu "
           "(keys: 0-9 * # A-D)"),
    ("1x@3", "bad DTMF item '1x@3': expected KEYS@SECONDS or KEYS@menu, e.g. 1@3.0 or "
             "4567#@menu (keys: 0-9 * # A-D)"),
    ("1@soon", "bad DTMF time in '1@soon': 'soon' is not a number or 'menu'"),
    ("1@-2", "bad DTMF time in '1@-2': must be >= 0 seconds"),
    ("1@nan", "bad DTMF time in '1@nan': must be >= 0 seconds"),
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


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flow: Path = FLOW) -> Path:
    settings = live_settings(tmp_path, flow=flow)  # port 8080: nothing listens there
    config = tmp_path / "hotline.yaml"
    values = settings.model_dump(mode="json", exclude={"auth_bootstrap_token"})  # "****"
    config.write_text(yaml.safe_dump(values, allow_unicode=True))
    monkeypatch.setenv("HOTLINE_CONFIG", str(config))  # load_settings sets it; undone after
    return config


def test_hotline_call_runs_a_whole_call_in_process(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, monkeypatch)
    wav = tmp_path / "caller.wav"
    write_wav(wav, bytes(16_000 * 2 * 2), 16_000)
    out = tmp_path / "bot.wav"
    # the key goes at once, while the greeting (no barge-in) plays: typed ahead for the menu
    result = CliRunner().invoke(app, [
        "call", "--wav", str(wav), "--dtmf", "1@0", "--config", str(config),
        "--out", str(out), "--codec", "pcmu", "--timeout-s", "60",
    ])
    assert result.exit_code == 0, result.output
    assert "bot    : 안녕하세요" in result.output
    assert "note   : key 1 was pressed during a prompt that does not allow barge-in" in (
        result.output)
    assert "key    : 1" in result.output
    assert "call ended: completed" in result.output
    assert "hung up by server" in result.output
    assert loud_ms(read_wav(out).data) > 1500


def test_hotline_call_in_process_reaches_the_demo_order_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, monkeypatch, ORDER_FLOW)
    result = CliRunner().invoke(app, [
        "call", "--dtmf", "4567#@menu", "--config", str(config), "--timeout-s", "60",
    ])
    assert result.exit_code == 0, result.output
    assert "calling 4000000001" in result.output and "with silence" in result.output
    assert "note   :" not in result.output  # sent when the bot listened
    assert "webhook /demo/orders/4567: ok (200)" in result.output
    assert "call ended: self_service" in result.output
    assert "keys sent: 4567#" in result.output


def test_an_unknown_codec_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["call", "--codec", "g729", "--server", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "--codec must be opus or pcmu, not 'g729'" in result.output


def test_next_server_needs_a_first_server() -> None:
    result = CliRunner().invoke(app, ["call", "--next-server", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "--next-server needs --server" in result.output
