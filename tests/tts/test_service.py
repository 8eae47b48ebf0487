"""TtsService with the real pyttsx3 + espeak-ng worker process."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import numpy as np
import pytest

from app.events import AudioChunk
from app.media.audio import Pcm, rms_dbfs, write_wav
from app.settings import Settings
from app.tts.cache import cache_key
from app.tts.errors import TtsError
from app.tts.service import TtsService
from tests.helpers.speech import espeak_pcm, have_espeak
from tests.helpers.tools import needs

pytestmark = needs(have_espeak(), "espeak-ng")

EN = "Thank you for calling. How can I help you today?"
ZH = "您好，欢迎致电。请问有什么可以帮您？"


@pytest.fixture
async def tts(settings: Settings) -> AsyncIterator[TtsService]:
    async with TtsService(settings) as service:
        yield service


def voiced_fraction(pcm: Pcm, floor_dbfs: float = -45.0) -> float:
    step = pcm.sample_rate_hz // 50 * 2
    levels = [rms_dbfs(pcm.data[i : i + step]) for i in range(0, len(pcm.data), step)]
    return sum(level > floor_dbfs for level in levels) / max(1, len(levels))


def assert_speech(pcm: Pcm, rate_hz: int, min_s: float, max_s: float) -> None:
    assert pcm.sample_rate_hz == rate_hz
    assert min_s < pcm.duration_s < max_s, pcm.duration_s
    assert rms_dbfs(pcm.data) > -35.0
    assert voiced_fraction(pcm) > 0.4


@pytest.mark.parametrize("rate_hz", [8000, 16000])
async def test_english_and_mandarin_are_spoken_at_the_call_rate(
    tts: TtsService, rate_hz: int
) -> None:
    assert_speech(await tts.synthesize(EN, "en", rate_hz), rate_hz, 1.5, 8.0)
    assert_speech(await tts.synthesize(ZH, "zh", rate_hz), rate_hz, 2.0, 9.0)


async def test_locales_use_the_configured_voices(tts: TtsService) -> None:
    assert tts.voices == {"en": "en-us", "zh": "cmn-latn-pinyin"}
    assert tts.voice_for("zh-CN") == tts.voice_for("zh_CN") == "cmn-latn-pinyin"


@pytest.mark.parametrize("rate_hz", [8000, 16000])
async def test_stream_gives_20ms_chunks_of_the_whole_utterance(
    tts: TtsService, rate_hz: int
) -> None:
    text = "One moment please. I am looking up your order. Thank you for waiting."
    chunks: list[AudioChunk] = [c async for c in tts.stream(text, "en", rate_hz)]
    assert all(len(c.pcm) == rate_hz // 50 * 2 and c.sample_rate_hz == rate_hz for c in chunks)
    assert [c.media_ts_ms for c in chunks] == [20 * i for i in range(len(chunks))]
    whole = await tts.synthesize(text, "en", rate_hz)  # served from the cache
    streamed = b"".join(c.pcm for c in chunks)
    assert streamed[: len(whole.data)] == whole.data
    assert set(streamed[len(whole.data) :]) <= {0} and len(streamed) - len(whole.data) < len(
        chunks[0].pcm
    )


async def test_abandoned_stream_leaves_the_service_usable(tts: TtsService) -> None:
    text = "First sentence. Second sentence. Third sentence. Fourth sentence."
    async with aclosing(tts.stream(text, "en", 16000)) as stream:
        async for _ in stream:
            break
    assert_speech(await tts.synthesize("Still here.", "en", 16000), 16000, 0.3, 4.0)


async def test_cache_hit_returns_the_same_audio_without_the_worker(
    tts: TtsService, settings: Settings
) -> None:
    first = await tts.synthesize(ZH, "zh", 8000)
    sent = tts.worker_stats.requests
    again = await tts.synthesize(ZH, "zh", 8000)
    assert again == first
    assert tts.worker_stats.requests == sent
    assert tts.stats.cache_hits == 2  # two sentences
    async with TtsService(settings) as restarted:  # the cache is on disk
        assert await restarted.synthesize(ZH, "zh", 8000) == first
        assert restarted.worker_stats.requests == 0


async def test_other_rate_or_voice_is_not_served_from_the_cache(tts: TtsService) -> None:
    await tts.synthesize("Hello.", "en", 8000)
    sent = tts.worker_stats.requests
    await tts.synthesize("Hello.", "en", 16000)
    assert tts.worker_stats.requests == sent + 1


async def test_corrupt_cache_entry_is_rendered_again(tts: TtsService) -> None:
    good = await tts.synthesize("Your call is important to us.", "en", 16000)
    entry = tts.cache.path_for(cache_key("Your call is important to us.", "en-us", 165, 16000))
    entry.write_bytes(entry.read_bytes()[: len(good.data) // 2])  # truncated by a crash
    sent = tts.worker_stats.requests
    again = await tts.synthesize("Your call is important to us.", "en", 16000)
    assert tts.worker_stats.requests == sent + 1
    assert tts.stats.corrupt_entries == 1
    assert_speech(again, 16000, 0.8, 6.0)
    assert tts.cache.load(cache_key("Your call is important to us.", "en-us", 165, 16000))


async def test_prerender_fills_the_cache_once(tts: TtsService) -> None:
    items = [("Welcome.", "en"), ("欢迎。", "zh"), ("Goodbye. See you.", "en")]
    assert await tts.prerender(items, 8000) == 3
    sent = tts.worker_stats.requests
    assert await tts.prerender(items, 8000) == 0
    assert tts.worker_stats.requests == sent
    with pytest.raises(TtsError, match="'hi' \\(fr\\)"):
        await tts.prerender([("hi", "fr")], 8000)


async def test_concurrent_requests_are_queued_and_all_answered(tts: TtsService) -> None:
    texts = [(f"Request number {n}.", "en") for n in range(4)] + [("请稍等。", "zh")]
    results = await asyncio.gather(*(tts.synthesize(t, loc, 16000) for t, loc in texts))
    for pcm in results:
        assert_speech(pcm, 16000, 0.5, 5.0)
    assert tts.worker_stats.requests == 5


def stereo_44k_wav(path: Path, tmp_path: Path) -> Pcm:
    mono = espeak_pcm("Please hold the line.", "en-us", 44_100, tmp_dir=tmp_path)
    samples = np.frombuffer(mono.data, dtype="<i2")
    stereo = np.stack([samples, samples // 2], axis=1).astype("<i2").tobytes()
    write_wav(path, stereo, 44_100, channels=2)
    return mono


async def test_recorded_prompt_is_converted_once_to_the_call_format(
    tts: TtsService, tmp_path: Path
) -> None:
    path = tmp_path / "studio.wav"
    mono = stereo_44k_wav(path, tmp_path)
    pcm = await tts.prompt_wav(path, 8000)
    assert pcm.sample_rate_hz == 8000
    assert abs(pcm.duration_s - mono.duration_s) < 0.01
    assert rms_dbfs(pcm.data) > -40
    assert await tts.prompt_wav(path, 8000) is pcm
    assert tts.stats.prompt_conversions == 1
    assert (await tts.prompt_wav(path, 16000)).sample_rate_hz == 16000
    assert tts.worker_stats.requests == 0


async def test_recorded_prompt_that_is_not_16_bit_is_refused(
    tts: TtsService, tmp_path: Path
) -> None:
    path = tmp_path / "8bit.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes([128, 200, 60]) * 800)
    with pytest.raises(TtsError, match="8bit.wav: 8-bit samples; Hotline needs 16-bit PCM") as err:
        await tts.prompt_wav(path, 8000)
    assert err.value.reason == "bad_prompt"
    with pytest.raises(TtsError, match="missing.wav"):
        await tts.prompt_wav(tmp_path / "missing.wav", 8000)


@pytest.mark.parametrize(
    ("text", "locale", "reason", "message"),
    [
        ("hello", "fr", "unknown_locale", "no voice for locale 'fr'; configured locales: en, zh"),
        ("", "en", "empty_text", "nothing to say"),
        ("\x07\x1b", "zh", "empty_text", "nothing to say"),
        ("😀🎉", "en", "unspeakable", "no letters or digits"),
        ("안녕하세요", "en", "unspeakable", "no configured voice reads '안'"),
    ],
)
async def test_bad_input_is_refused_clearly(
    tts: TtsService, text: str, locale: str, reason: str, message: str
) -> None:
    for call in (tts.synthesize(text, locale, 16000), _drain(tts.stream(text, locale, 16000))):
        with pytest.raises(TtsError, match=message) as err:
            await call
        assert err.value.reason == reason
    assert tts.worker_stats.requests == 0


async def _drain(stream: AsyncIterator[AudioChunk]) -> None:
    async for _ in stream:
        pass


async def test_a_voice_that_is_not_installed_is_named(settings: Settings) -> None:
    custom = settings.model_copy(update={"tts_voices": {"en": "en-us", "xx": "no-such-voice"}})
    async with TtsService(custom) as tts:
        assert tts.missing_voices == {"xx": "no-such-voice"}
        with pytest.raises(TtsError, match="'no-such-voice' for locale 'xx' is not installed"):
            await tts.synthesize("hello", "xx", 16000)
        assert (await tts.synthesize("hello", "en", 16000)).duration_s > 0.2
