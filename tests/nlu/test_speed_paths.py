"""The serving paths: ONNX Runtime encoder = torch encoder; the n-gram fast path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from app.nlu.classifier import IntentClassifier
from app.nlu.evaluate import evaluate, load_eval_files, summary
from app.nlu.onnx_encoder import OnnxSentenceEncoder
from app.nlu.pipeline import get_encoder
from app.settings import PROJECT_ROOT, Settings

HELDOUT = sorted((PROJECT_ROOT / "intents" / "tests").glob("heldout_*.yaml"))


def test_onnx_embeddings_match_torch(
    demo_classifier: IntentClassifier, nlu_settings: Settings
) -> None:
    onnx = demo_classifier.encoder
    assert isinstance(onnx, OnnxSentenceEncoder)  # the default serving backend
    texts = ["where is my order", "我要退款", "i want to talk to a real person please", ""]
    torch_emb = get_encoder(nlu_settings).encode_prepared(texts)
    onnx_emb = onnx.encode_prepared(texts)
    assert np.abs(torch_emb - onnx_emb).max() < 1e-4
    again = onnx.encode_prepared(texts)  # served from its LRU cache
    assert np.array_equal(again, onnx_emb)


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.dim = inner.dim  # type: ignore[attr-defined]
        self.identity = inner.identity  # type: ignore[attr-defined]
        self.texts = 0

    def encode_prepared(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.texts += len(texts)
        out: np.ndarray = self.inner.encode_prepared(texts, progress)  # type: ignore[attr-defined]
        return out


def test_fast_path_skips_the_encoder_only_when_the_ngram_head_is_sure(
    demo_classifier: IntentClassifier,
) -> None:
    counting = CountingEncoder(demo_classifier.encoder)
    fast = IntentClassifier(demo_classifier.locales, counting,
                            replace(demo_classifier.decision, fast_threshold=0.9),
                            demo_classifier.manifest)
    slow = IntentClassifier(demo_classifier.locales, counting,
                            replace(demo_classifier.decision, fast_threshold=1.01),
                            demo_classifier.manifest)
    assert all(m.fast is not None for m in demo_classifier.locales.values())
    sure = fast.predict("转接人工客服", "zh")
    assert sure.intent == "talk_to_agent" and counting.texts == 0
    unsure = fast.predict("后天上海会不会下雨", "zh")  # off-topic: never decided by n-grams
    assert unsure.intent is None and counting.texts == 1
    slow.predict("转接人工客服", "zh")
    assert counting.texts == 2
    held = load_eval_files(HELDOUT)
    with_fast = summary(evaluate(fast, held))["by_locale"]
    without = summary(evaluate(slow, held))["by_locale"]
    texts = sum(len(ts) for ints in held.values() for ts in ints.values())
    assert counting.texts < 2 * texts  # the fast run skipped the encoder for some
    for loc in ("zh", "en"):
        assert abs(with_fast[loc]["in_scope_accuracy"] - without[loc]["in_scope_accuracy"]) <= (
            0.03), (loc, with_fast[loc], without[loc])
        assert with_fast[loc]["oos_recall"] >= without[loc]["oos_recall"] - 0.03
