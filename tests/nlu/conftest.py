"""One real intent model per test session: the shipped demo model (``models/intents``,
copied into a tmp folder) when it is current for the demo data, else one trained there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.nlu.classifier import IntentClassifier
from app.nlu.intents import load_intents
from app.nlu.pipeline import open_classifier, stale_reason, train_folder
from app.nlu.service import NluService
from app.nlu.store import POINTER, current_model_dir
from app.settings import PROJECT_ROOT, Settings

DEMO_INTENTS = PROJECT_ROOT / "intents"


@pytest.fixture(scope="session")
def nlu_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("nlu")
    return Settings(data_dir=root / "data", intent_model_dir=root / "models", log_json=False)


@pytest.fixture(scope="session")
def demo_model_root(nlu_settings: Settings) -> Path:
    root = nlu_settings.intent_model_path
    shipped = PROJECT_ROOT / "models" / "intents"
    folder = current_model_dir(shipped)
    if folder is not None and stale_reason(load_intents(DEMO_INTENTS), shipped,
                                           nlu_settings) is None:
        shutil.copytree(folder, root / folder.name)
        (root / POINTER).write_text(folder.name + "\n", encoding="utf-8")
    else:
        train_folder(DEMO_INTENTS, root, nlu_settings)
    return root


@pytest.fixture(scope="session")
def demo_classifier(demo_model_root: Path, nlu_settings: Settings) -> IntentClassifier:
    return open_classifier(demo_model_root, nlu_settings)


@pytest.fixture(scope="session")
def demo_service(demo_model_root: Path, nlu_settings: Settings) -> NluService:
    service = NluService(nlu_settings)
    assert service.load() is None
    return service
