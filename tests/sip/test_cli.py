"""``hotline call --sip``: a whole SIP/RTP call to an in-process app, keys by RFC 4733."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import yaml
from typer.testing import CliRunner

from app.cli import app
from app.media.audio import read_wav, write_wav
from tests.helpers.live import live_settings
from tests.helpers.tones import loud_ms
from tests.sip.conftest import KO_FLOW


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_hotline_call_sip_runs_a_whole_call_in_process(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    settings = live_settings(tmp_path, flow=KO_FLOW, intent_model_dir=tmp_path / "none")
    config = tmp_path / "hotline.yaml"
    values = settings.model_dump(mode="json", exclude={"auth_bootstrap_token"})  # "****"
    config.write_text(yaml.safe_dump(values, allow_unicode=True))
    monkeypatch.setenv("HOTLINE_CONFIG", str(config))
    wav = tmp_path / "caller.wav"
    write_wav(wav, bytes(16_000 * 2 * 2), 16_000)
    out = tmp_path / "bot.wav"
    result = CliRunner().invoke(app, [
        "call", "--sip", "--wav", str(wav), "--dtmf", "1@4.0", "--config", str(config),
        "--out", str(out), "--grace-s", "20", "--timeout-s", "60",
    ])
    assert result.exit_code == 0, result.output
    assert "over SIP at 127.0.0.1:" in result.output
    assert "key    : 1" in result.output, result.output
    assert "call ended: completed" in result.output
    assert "hung up by server" in result.output and "codec pcmu/8000" in result.output
    assert loud_ms(read_wav(out).data, 8000) > 1500
