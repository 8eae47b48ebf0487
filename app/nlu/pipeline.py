"""Train a data folder into a model folder, open a trained model: what CLI, service and
benchmarks share (so every data set is trained and evaluated the same way)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.nlu.classifier import Decision, IntentClassifier, load_classifier
from app.nlu.features import EmbeddingCache, Encoder, SentenceEncoder, default_encoder_path
from app.nlu.intents import IntentCatalog, check_trainable, load_intents
from app.nlu.store import current_model_dir, model_status, write_model
from app.nlu.train import Progress, TrainConfig, train_catalog
from app.settings import Settings

DEFAULT_CONFIG = TrainConfig()
MAX_TEXT_CHARS = 2000

_encoders: dict[Path, SentenceEncoder] = {}
_encoders_lock = threading.Lock()


def get_encoder(settings: Settings) -> SentenceEncoder:
    """The process-wide encoder for ``settings`` (loaded once)."""
    path = default_encoder_path(settings.intent_encoder_path).resolve()
    with _encoders_lock:
        encoder = _encoders.get(path)
        if encoder is None:
            import torch

            torch.set_num_threads(settings.nlu_torch_threads)
            encoder = SentenceEncoder(path)
            _encoders[path] = encoder
        return encoder


_serving: dict[tuple[Path, str], Encoder] = {}


def get_serving_encoder(settings: Settings) -> Encoder:
    """The encoder ``predict`` uses: ONNX Runtime (exported once from torch) or torch."""
    torch_encoder = get_encoder(settings)
    if settings.nlu_encoder_backend == "torch":
        return torch_encoder
    key = (torch_encoder.path, settings.nlu_encoder_backend)
    with _encoders_lock:
        found = _serving.get(key)
        if found is None:
            from app.nlu.onnx_encoder import OnnxSentenceEncoder

            found = OnnxSentenceEncoder(torch_encoder, settings.model_cache_dir / "onnx",
                                        threads=settings.nlu_torch_threads)
            _serving[key] = found
        return found


def embedding_cache(settings: Settings, encoder: SentenceEncoder) -> EmbeddingCache:
    return EmbeddingCache(settings.data_dir / "cache" / "nlu", encoder)


def decision(settings: Settings) -> Decision:
    return Decision(settings.intent_threshold, settings.intent_margin, MAX_TEXT_CHARS,
                    settings.intent_fast_threshold)


def recipe(settings: Settings, config: TrainConfig = DEFAULT_CONFIG) -> str:
    return config.recipe_id(get_encoder(settings).identity)


def stale_reason(catalog: IntentCatalog, model_root: Path, settings: Settings,
                 config: TrainConfig = DEFAULT_CONFIG) -> str | None:
    return model_status(model_root, catalog.data_hash, recipe(settings, config))


def train_folder(
    data_dir: Path, model_root: Path, settings: Settings,
    config: TrainConfig = DEFAULT_CONFIG, progress: Progress | None = None,
    catalog: IntentCatalog | None = None,
) -> Path:
    """Train ``data_dir`` (an intents folder) into a new version under ``model_root``."""
    catalog = catalog or load_intents(data_dir)
    check_trainable(catalog)
    encoder = get_encoder(settings)
    started = time.monotonic()
    trained = train_catalog(catalog, embedding_cache(settings, encoder), config, progress)
    manifest = {
        "data_dir": str(data_dir), "data_hash": catalog.data_hash,
        "recipe": config.recipe_id(encoder.identity), "encoder": encoder.identity,
        "encoder_path": str(encoder.path), "train_config": config.__dict__,
        "settings": {"intent_threshold": settings.intent_threshold,
                     "intent_margin": settings.intent_margin},
        "train_seconds": round(time.monotonic() - started, 2),
    }
    return write_model(model_root, trained, manifest)


def open_classifier(model_root: Path, settings: Settings) -> IntentClassifier:
    """Load the ``current`` model under ``model_root`` (or a version folder itself)."""
    folder = model_root if (model_root / "manifest.json").is_file() else current_model_dir(
        model_root
    )
    if folder is None:
        raise FileNotFoundError(f"no trained intent model under {model_root}")
    return load_classifier(folder, get_serving_encoder(settings), decision(settings))
