"""Recognizer streams with the real Vosk decoder and the real Korean model (espeak-ng audio)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.asr.engine import AsrEngine
from app.asr.errors import GrammarVocabularyError, LocaleUnavailableError
from app.asr.registry import ModelRegistry
from app.asr.stream import RecognizerStream, StreamClosedError
from app.events import AudioChunk, SpeechActivity, Transcript
from app.media.audio import Pcm, frames, silence
from app.settings import Settings

MENU = ["예", "아니요", "상담원", "영업시간", "잔액 조회"]
Speech = Callable[[str, int], Pcm]


def utterances(speech: Speech, texts: list[str], rate: int) -> bytes:
    """Lead silence, then each text followed by a second of silence (a caller pausing)."""
    out = silence(300, rate)
    for text in texts:
        out += speech(text, rate).data + silence(1000, rate)
    return out


async def run(stream: RecognizerStream, pcm: bytes, rate: int) -> list[Transcript | SpeechActivity]:
    async def feed() -> None:
        for i, chunk in enumerate(frames(pcm, rate)):
            stream.push(chunk)
            if i % 10 == 9:
                await asyncio.sleep(0.01)
        stream.end_input()

    feeder = asyncio.create_task(feed())
    events = [ev async for ev in stream]
    await feeder
    await stream.aclose()
    return events


def finals(events: list[Transcript | SpeechActivity]) -> list[Transcript]:
    return [e for e in events if isinstance(e, Transcript) and e.is_final]


@pytest.mark.parametrize("rate", [8_000, 16_000])
async def test_free_form_partials_finals_and_monotonic_timings(
    engine: AsrEngine, speech: Speech, rate: int
) -> None:
    pcm = utterances(speech, ["안녕하세요 반갑습니다", "상담원 연결 부탁드립니다"], rate)
    events = await run(engine.stream("ko", rate, call_id="t-free"), pcm, rate)

    kinds = [e.type if isinstance(e, SpeechActivity) else
             ("final" if e.is_final else "partial") for e in events]
    assert kinds.count("speech_start") == 2 and kinds.count("speech_end") == 2
    assert kinds[0] == "speech_start" and kinds[-1] == "speech_end"
    assert "partial" in kinds
    assert kinds.index("partial") < kinds.index("final")
    done = finals(events)
    assert len(done) >= 2 and all(t.text and not t.grammar and t.locale == "ko" for t in done)
    times = [x for t in done for w in t.words for x in (w.start_s, w.end_s)]
    assert times == sorted(times)
    assert 0.0 <= times[0] and times[-1] <= len(pcm) / 2 / rate
    assert all(0.0 <= w.confidence <= 1.0 for t in done for w in t.words)
    assert all(t.start_s == t.words[0].start_s and t.end_s == t.words[-1].end_s for t in done)
    # the second utterance is timed after the first (times are relative to the stream start)
    starts = [e.media_ts_ms for e in events if isinstance(e, SpeechActivity)]
    assert starts == sorted(starts)
    assert done[-1].start_s > 1.0 + len(speech("안녕하세요 반갑습니다", rate).data) / 2 / rate - 0.5


@pytest.mark.parametrize("rate", [8_000, 16_000])
@pytest.mark.parametrize("phrase", ["영업시간", "아니요"])
async def test_grammar_recognizes_a_listed_phrase(
    engine: AsrEngine, speech: Speech, ko_settings: Settings, rate: int, phrase: str
) -> None:
    events = await run(engine.stream("ko", rate, grammar=MENU), utterances(speech, [phrase], rate),
                       rate)
    done = finals(events)
    assert done and all(t.grammar for t in done)
    best = max(done, key=lambda t: t.confidence)
    assert best.text == phrase
    assert best.confidence >= ko_settings.asr_grammar_min_confidence


@pytest.mark.parametrize("rate", [8_000, 16_000])
async def test_grammar_out_of_list_speech_gets_low_confidence(
    engine: AsrEngine, speech: Speech, ko_settings: Settings, rate: int
) -> None:
    texts = ["날씨가 좋네요", "잘 모르겠어요"]
    events = await run(engine.stream("ko", rate, grammar=MENU), utterances(speech, texts, rate),
                       rate)
    done = finals(events)
    assert done and all(t.grammar for t in done)
    assert all(t.confidence < ko_settings.asr_grammar_min_confidence for t in done), done


async def test_phrases_with_unknown_words_are_reported(engine: AsrEngine) -> None:
    with pytest.raises(GrammarVocabularyError) as err:
        engine.stream("ko", 16_000, grammar=["예", "hello world", "상담원"])
    assert err.value.missing == {"hello world": ["hello", "world"]}
    assert "hello" in str(err.value)
    stream = engine.stream("ko", 16_000)
    with pytest.raises(GrammarVocabularyError):
        stream.set_grammar(["zzz"])
    await stream.aclose()


async def test_set_grammar_applies_from_the_next_utterance(
    engine: AsrEngine, speech: Speech
) -> None:
    rate = 16_000
    stream = engine.stream("ko", rate)
    first = utterances(speech, ["안녕하세요"], rate)
    for chunk in frames(first, rate):
        stream.push(chunk)
    got: list[Transcript] = []
    async for ev in stream:
        if isinstance(ev, Transcript) and ev.is_final:
            got.append(ev)
        if isinstance(ev, SpeechActivity) and ev.type == "speech_end":
            break
    stream.set_grammar(MENU)
    events = await run(stream, speech("영업시간", rate).data + silence(1000, rate), rate)
    assert got and not any(t.grammar for t in got)
    later = finals(events)
    assert later and all(t.grammar for t in later)
    assert any(t.text == "영업시간" for t in later)


async def test_decoding_never_blocks_the_event_loop(engine: AsrEngine, speech: Speech) -> None:
    rate = 16_000
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    stream = engine.stream("ko", rate)
    for chunk in frames(utterances(speech, ["안녕하세요 반갑습니다 상담원 연결"], rate), rate):
        stream.push(chunk)  # a 4 s backlog at once: seconds of decoding work
    stream.end_input()
    await asyncio.sleep(0)
    before = ticks
    events = [ev async for ev in stream]
    during = ticks - before
    stop.set()
    await task
    await stream.aclose()
    assert finals(events)
    assert stream.stats.decoder_calls >= 1
    assert during >= 20  # the loop kept running while the pool decoded


async def test_bounded_queue_counts_drops_and_still_finishes(
    ko_settings: Settings, speech: Speech
) -> None:
    settings = ko_settings.model_copy(update={"asr_queue_max_chunks": 10, "asr_workers": 1})
    eng = AsrEngine(settings, ModelRegistry(settings.models_dir))
    await eng.aload()
    try:
        stream = eng.stream("ko", 16_000)
        chunks = list(frames(utterances(speech, ["안녕하세요"], 16_000), 16_000))
        for chunk in chunks:
            stream.push(chunk)
        stream.end_input()
        [ev async for ev in stream]
        assert 0 < stream.stats.dropped_chunks < len(chunks)
        await stream.aclose()
    finally:
        await eng.aclose()


async def test_bad_use_is_refused_clearly(engine: AsrEngine) -> None:
    with pytest.raises(LocaleUnavailableError) as err:
        engine.stream("fr", 16_000)
    assert "fr" in str(err.value)
    with pytest.raises(ValueError, match="11025 Hz"):
        engine.stream("ko", 11_025)
    stream = engine.stream("ko", 16_000)
    with pytest.raises(ValueError, match="8000 Hz"):
        stream.push(AudioChunk(b"\x00" * 320, 8_000))
    stream.end_input()
    assert [ev async for ev in stream] == []
    with pytest.raises(StreamClosedError):
        stream.push(AudioChunk(b"\x00" * 640, 16_000))
    await stream.aclose()


async def test_aclose_mid_utterance_ends_iteration(engine: AsrEngine, speech: Speech) -> None:
    stream = engine.stream("ko", 16_000)
    for chunk in frames(speech("안녕하세요 반갑습니다", 16_000).data, 16_000):
        stream.push(chunk)
    await stream.aclose()
    assert stream.closed
    rest = [ev async for ev in stream]
    assert all(isinstance(ev, Transcript | SpeechActivity) for ev in rest)


async def test_streams_share_warm_recognizers_but_keep_their_own_clock(
    engine: AsrEngine, speech: Speech
) -> None:
    rate = 16_000
    pcm = utterances(speech, ["상담원 연결 부탁드립니다"], rate)
    first = finals(await run(engine.stream("ko", rate, call_id="call-1"), pcm, rate))
    second = finals(await run(engine.stream("ko", rate, call_id="call-2"), pcm, rate))
    assert first and second
    # the second call reused the first call's recognizer, yet its times start at its own zero
    assert abs(second[0].start_s - first[0].start_s) < 0.3
    assert second[-1].end_s < len(pcm) / 2 / rate
