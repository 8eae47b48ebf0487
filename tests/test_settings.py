"""Settings: defaults, a YAML file, HOTLINE_* environment variables over the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import load_settings
from app.settings_check import SettingsError


def test_yaml_file_then_environment_override(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hotline.yaml"
    config.write_text("port: 9100\nasr_models: {zh: my-cn-model}\nintent_threshold: 0.7\n")
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    monkeypatch.setenv("HOTLINE_PORT", "9200")
    settings = load_settings(config)
    assert settings.port == 9200  # the environment wins over the file
    assert settings.asr_models == {"zh": "my-cn-model"}
    assert settings.intent_threshold == 0.7
    assert settings.sqlalchemy_url.startswith("sqlite:///")
    assert settings.sqlalchemy_url.endswith("hotline.db")


def test_unknown_or_invalid_keys_are_rejected_with_their_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    config = tmp_path / "bad.yaml"
    config.write_text("prot: 9100\n")
    with pytest.raises(SettingsError, match=r"bad.yaml:1: unknown setting 'prot' \(did you mean "
                       r"'port'\?\)"):
        load_settings(config)
    config.write_text("# thresholds\nintent_threshold: 2\n")
    with pytest.raises(SettingsError, match=r"bad.yaml:2: intent_threshold: Input should be less "
                       r"than or equal to 1 \(got 2\)"):
        load_settings(config)


def test_a_missing_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="settings file not found: .*nope.yaml"):
        load_settings(tmp_path / "nope.yaml")
