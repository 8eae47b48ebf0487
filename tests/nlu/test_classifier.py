"""The real classifier, trained once per session on the demo data."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.nlu.classifier import IntentClassifier
from app.nlu.evaluate import evaluate, load_eval_files, summary
from app.nlu.intents import load_intents
from app.nlu.pipeline import stale_reason
from app.nlu.service import NluService
from app.nlu.store import current_model_dir
from app.settings import PROJECT_ROOT, Settings

HELDOUT = sorted((PROJECT_ROOT / "intents" / "tests").glob("*.yaml"))


def test_heldout_accuracy_meets_the_project_thresholds(
    demo_classifier: IntentClassifier, nlu_settings: Settings
) -> None:
    figures = summary(evaluate(demo_classifier, load_eval_files(HELDOUT)))
    assert set(figures["by_locale"]) == {"zh", "en"}
    for loc, m in figures["by_locale"].items():
        assert m["in_scope_accuracy"] >= nlu_settings.intent_min_accuracy, (loc, m)
        assert m["oos_recall"] >= nlu_settings.intent_min_oos_recall, (loc, m)


# Spot checks: never copied from the training files (a test below asserts it).
CLEAR = [
    ("我的快递到哪了", "zh", "order_status"),
    ("帮我转个人工吧", "zh", "talk_to_agent"),
    ("could you tell me where my package is", "en", "order_status"),
    ("i want to talk to a real person", "en", "talk_to_agent"),
]
OFF_TOPIC = [
    ("后天上海会不会下雨", "zh"), ("sing me something from the eighties", "en"),
    ("who won the world cup in 1998", "en"),
]
LOCALE_VARIANTS = [("转接人工客服", "zh-CN", "talk_to_agent"),
                   ("cancel my order", "en_US", "cancel_order")]


def test_spot_check_sentences_are_not_training_examples() -> None:
    from app.nlu.text import canonical_example

    catalog = load_intents(PROJECT_ROOT / "intents")
    trained = {(loc, canonical_example(t)) for loc in catalog.locales()
               for t, _ in catalog.examples(loc)}
    trained |= {(loc, canonical_example(t)) for loc, ts in catalog.out_of_scope.items()
                for t in ts}
    spot = [(loc, t) for t, loc, _ in CLEAR] + [(loc, t) for t, loc in OFF_TOPIC]
    spot += [(loc.split("-")[0].split("_")[0], t) for t, loc, _ in LOCALE_VARIANTS]
    spot += [("zh", "我要投诉 订单四五六七八 太差了"), ("zh", "那个 我的洗衣机坏了 能上门修吗")]
    spot += [("zh", "今天天气不错"), ("zh", "我要投诉你们"), ("en", "i want to cancel it"),
             ("zh", "请问你们周末几点开门")]
    copied = [(loc, t) for loc, t in spot if (loc, canonical_example(t)) in trained]
    assert copied == []


@pytest.mark.parametrize(("text", "locale", "intent"), CLEAR)
def test_clear_requests_get_their_intent(
    demo_classifier: IntentClassifier, text: str, locale: str, intent: str
) -> None:
    result = demo_classifier.predict(text, locale)
    assert result.intent == intent, result
    assert result.reason == "ok"
    assert result.ranking[0].intent == intent
    confidences = [c.confidence for c in result.ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert 0 < sum(confidences) <= 1.0001


@pytest.mark.parametrize(("text", "locale"), OFF_TOPIC)
def test_out_of_scope_gets_no_intent(
    demo_classifier: IntentClassifier, text: str, locale: str
) -> None:
    result = demo_classifier.predict(text, locale)
    assert result.intent is None
    assert result.reason in {"low_confidence", "ambiguous"}


@pytest.mark.parametrize(
    ("text", "locale", "reason"),
    [
        ("", "zh", "empty"),
        ("   ", "en", "empty"),
        ("？！。", "zh", "empty"),
        ("x" * 10_000, "en", "too_long"),
        ("我要退款", "fr", "unknown_locale"),
    ],
)
def test_bad_input_is_a_no_intent_answer(
    demo_classifier: IntentClassifier, text: str, locale: str, reason: str
) -> None:
    result = demo_classifier.predict(text, locale)
    assert result.intent is None
    assert result.reason == reason


@pytest.mark.parametrize(
    "text", ["😀😀😀", "🤬🤬 refund 退款 😡", "我想 cancel my order 谢谢", "a" * 1999, "\x00\ufffd"]
)
def test_odd_text_never_raises(demo_classifier: IntentClassifier, text: str) -> None:
    for locale in ("zh", "en", "zh-CN", "EN_us"):
        result = demo_classifier.predict(text, locale)
        assert result.reason in {"ok", "low_confidence", "ambiguous", "empty"}


def test_locale_variants_map_to_the_base_language(demo_classifier: IntentClassifier) -> None:
    for text, locale, intent in LOCALE_VARIANTS:
        assert demo_classifier.predict(text, locale).intent == intent


def test_service_understands_intent_entities_and_sentiment(demo_service: NluService) -> None:
    found = demo_service.understand("我要投诉 订单四五六七八 太差了", "zh")
    assert found.intent.intent == "complaint"
    assert [(e.kind, e.value) for e in found.entities] == [("digits", "45678")]
    assert found.sentiment.label == "negative"


def test_unloaded_service_says_model_unavailable(tmp_path: Path) -> None:
    service = NluService(Settings(data_dir=tmp_path, intent_model_dir=tmp_path / "none"))
    problem = service.load()
    assert problem is not None and "no trained intent model" in problem
    assert service.understand("你好", "zh").intent.reason == "model_unavailable"


def test_model_is_versioned_with_its_data_hash(
    demo_model_root: Path, nlu_settings: Settings
) -> None:
    folder = current_model_dir(demo_model_root)
    assert folder is not None and folder.parent == demo_model_root
    names = {p.name for p in folder.iterdir()}
    assert {"manifest.json", "zh.head.safetensors", "en.head.safetensors"} <= names
    catalog = load_intents(PROJECT_ROOT / "intents")
    assert stale_reason(catalog, demo_model_root, nlu_settings) is None


def test_shipped_model_is_current_for_the_demo_data(nlu_settings: Settings) -> None:
    """``models/intents`` is committed so ``make run`` starts without training: retrain it
    (``hotline intents train``) whenever the intent data or the recipe changes."""
    catalog = load_intents(PROJECT_ROOT / "intents")
    assert stale_reason(catalog, PROJECT_ROOT / "models" / "intents", nlu_settings) is None


def test_changed_data_makes_the_model_stale(
    tmp_path: Path, demo_model_root: Path, nlu_settings: Settings
) -> None:
    data = tmp_path / "intents"
    data.mkdir()
    for src in (PROJECT_ROOT / "intents").glob("*.yaml"):
        (data / src.name).write_bytes(src.read_bytes())
    with open(data / "conversation.yaml", "a", encoding="utf-8") as f:
        f.write("  - name: thanks\n    examples: {en: [thank you very much]}\n")
    reason = stale_reason(load_intents(data), demo_model_root, nlu_settings)
    assert reason is not None and "changed" in reason


def test_reload_while_predicting_from_another_thread(demo_service: NluService) -> None:
    errors: list[BaseException] = []
    results: list[str | None] = []
    stop = threading.Event()

    def caller() -> None:
        try:
            while not stop.is_set():
                results.append(demo_service.understand("转接人工客服", "zh").intent.intent)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    try:
        before = demo_service.classifier
        for _ in range(3):
            demo_service.reload()
        assert demo_service.classifier is not before
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == []
    assert results and set(results) == {"talk_to_agent"}
