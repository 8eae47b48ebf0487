"""One real intent model per test session, trained on the demo data into a tmp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.nlu.classifier import IntentClassifier
from app.nlu.pipeline import open_classifier, train_folder
from app.nlu.service import NluService
from app.settings import PROJECT_ROOT, Settings

DEMO_INTENTS = PROJECT_ROOT / "intents"


@pytest.fixture(scope="session")
def nlu_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("nlu")
    return Settings(data_dir=root / "data", intent_model_dir=root / "models", log_json=False)


@pytest.fixture(scope="session")
def demo_model_root(nlu_settings: Settings) -> Path:
    train_folder(DEMO_INTENTS, nlu_settings.intent_model_path, nlu_settings)
    return nlu_settings.intent_model_path


@pytest.fixture(scope="session")
def demo_classifier(demo_model_root: Path, nlu_settings: Settings) -> IntentClassifier:
    return open_classifier(demo_model_root, nlu_settings)


@pytest.fixture(scope="session")
def demo_service(demo_model_root: Path, nlu_settings: Settings) -> NluService:
    service = NluService(nlu_settings)
    assert service.load() is None
    return service
