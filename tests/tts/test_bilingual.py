"""Bilingual prompts, long text, caller data: the real TTS service and espeak-ng worker.

The worker pool's ``render`` is observed (not replaced) to see which voice got which text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.flows.runtime import CallContext, Say
from app.media.audio import Pcm, read_wav, rms_dbfs
from app.settings import PROJECT_ROOT, Settings
from app.tts.service import TtsService
from app.tts.text import has_hanzi
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

pytestmark = needs(have_espeak(), "espeak-ng")

LANGUAGE_MENU_EN = "中文服务请按1。For English, press 2. Or just tell me what you need."


class Observed:
    """Every (text, voice) the worker pool is asked to render."""

    def __init__(self, tts: TtsService) -> None:
        self.calls: list[tuple[str, str]] = []
        real = tts.pool.render

        async def render(text: str, voice: str, rate_wpm: int) -> Pcm:
            self.calls.append((text, voice))
            return await real(text, voice, rate_wpm)

        tts.pool.render = render  # type: ignore[method-assign]


@pytest.fixture
async def tts(settings: Settings) -> AsyncIterator[TtsService]:
    async with TtsService(settings) as service:
        yield service


async def test_bilingual_prompt_is_spoken_by_two_voices(tts: TtsService) -> None:
    seen = Observed(tts)
    pieces = tts.plan(LANGUAGE_MENU_EN, "en")
    assert [(p.voice, has_hanzi(p.text)) for p in pieces] == [
        ("cmn-latn-pinyin", True), ("en-us", False), ("en-us", False)]
    pcm = await tts.synthesize(LANGUAGE_MENU_EN, "en", 16_000)
    assert pcm.duration_s > 3.0 and rms_dbfs(pcm.data) > -35
    voices = {voice for _, voice in seen.calls}
    assert voices == {"cmn-latn-pinyin", "en-us"}
    assert not any(has_hanzi(text) for text, voice in seen.calls if voice == "en-us")
    for piece in pieces:  # each run alone is audible speech
        alone = await tts.synthesize(piece.text, piece.locale, 16_000)
        assert rms_dbfs(alone.data) > -35, piece


async def test_english_demo_call_greeting_synthesizes(tts: TtsService) -> None:
    flows = load_flows(PROJECT_ROOT / "ivr_flows")
    step = FlowEngine(flows).start("demo_hotline", CallContext(
        call_id="c1", hotline_number="4008001234", caller_number="+12125550100", locale="en"))
    says = [a for a in step.actions if isinstance(a, Say)]
    assert len(says) >= 2 and step.listen is not None  # greeting + language menu, then listen
    seen = Observed(tts)
    for say in says:
        chunks = [c async for c in tts.stream(say.text, say.locale, 8_000, cache=say.cache)]
        assert len(chunks) > 50  # more than a second of audio each
    assert not any(has_hanzi(text) for text, voice in seen.calls if voice == "en-us")


async def test_long_text_is_rendered_in_order_without_flooding_the_queue(
    settings: Settings,
) -> None:
    sentences = [f"Item {n} of your order is ready." for n in range(70)]
    text = " ".join(sentences)
    assert len(text) > 2000
    tight = settings.model_copy(update={"tts_queue_max": 2})
    async with TtsService(tight) as tts:
        seen = Observed(tts)
        chunks = [c async for c in tts.stream(text, "en", 8_000)]
    rendered = list(dict.fromkeys(t for t, _ in seen.calls))  # a silent render is retried
    assert len(rendered) == 70
    assert rendered[:2] == ["Item zero of your order is ready.",
                            "Item one of your order is ready."]
    assert [c.media_ts_ms for c in chunks] == [20 * i for i in range(len(chunks))]
    assert len(chunks) * 0.02 > 70 * 1.0  # every sentence is in the stream


async def test_caller_data_is_never_written_to_the_cache(tts: TtsService) -> None:
    secret = "Your card number is 4 5 5 6 7 8 9 0."
    await tts.synthesize(secret, "en", 8_000, cache=False)
    await tts.synthesize(secret, "en", 8_000, cache=False)
    assert tts.stats.uncached_renders == 2 and tts.stats.cache_hits == 0
    assert not tts.cache.directory.exists() or not list(tts.cache.directory.rglob("*.pcm"))
    await tts.synthesize("Thank you for calling.", "en", 8_000)
    assert len(list(tts.cache.directory.rglob("*.pcm"))) == 1


def test_a_long_say_from_the_command_line(tmp_path: Path) -> None:
    text = "".join(f"您的第{n}件商品已经发货，预计明天送达。" for n in range(1, 41))
    assert len(text) > 700
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["HOTLINE_DATA_DIR"] = str(tmp_path / "data")
    out = tmp_path / "long.wav"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "say", text, "-o", str(out)], cwd=PROJECT_ROOT,
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "(zh)" in result.stdout  # the default locale, not en
    pcm = read_wav(out)
    assert pcm.duration_s > 60 and rms_dbfs(pcm.data) > -35
