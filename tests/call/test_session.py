"""CallSession with real parts: Vosk (Korean test model), espeak TTS, the flow engine, SQLite.

Only the media leg is ``tests.fakes.PipeMedia`` (no network), so the call's timeline can be
driven exactly: speak at a moment, press a key, hang up mid-prompt.
"""

from __future__ import annotations

import wave

import numpy as np
import pytest

from tests.call.conftest import Rig
from tests.fakes import PipeMedia
from tests.helpers.speech import espeak_pcm


async def test_keypad_caller_is_routed_and_the_call_is_recorded(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await rig.start(media)
    await rig.event(call_id, "listen")
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
    types = rig.types(call_id)
    assert types[0] == "call_started" and types[-1] == "call_ended"
    assert "dtmf" in types and "prompt_played" in types
    # the stereo recording: bot on the right channel, caller (silent here) on the left
    assert len(detail.recordings) == 1
    with wave.open(str(rig.settings.recordings_dir / detail.recordings[0].path)) as wav:
        assert wav.getnchannels() == 2
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert np.abs(samples[:, 1]).max() > 1000
    assert np.abs(samples[:, 0]).max() == 0
    assert detail.recordings[0].duration_s == pytest.approx(len(samples) / 16000, abs=0.05)


async def test_spoken_menu_choice_is_recognized(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await rig.start(media)
    await rig.event(call_id, "listen")
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
    call_id = await rig.start(media)
    # the greeting does not allow barge-in; the menu prompt does
    entered = await rig.event(call_id, "prompt_played")
    assert entered["text"].startswith("안녕하세요")
    await rig.event(call_id, "prompt_played", where=lambda e: e["text"].startswith("영업시간"))
    await media.wait_bot_audio(0.6)  # the menu prompt is playing now
    media.say(espeak_pcm("상담원", "ko", 16000).data + b"\x00" * 32000)
    barge = await rig.event(call_id, "barge_in")
    assert barge["dropped_ms"] > 0
    transfer = await rig.event(call_id, "transfer")
    assert transfer["queue"] == "general"
    handoff = await rig.event(call_id, "handoff_requested")
    assert handoff["queue"] == "general" and handoff["reason"] == "caller_choice"
    assert {"speaker": "caller", "text": "상담원"} in [
        {"speaker": t["speaker"], "text": t["text"]} for t in handoff["transcript"]]
    assert handoff["flow_path"][:2] == ["greeting", "menu"]
    assert media.flushed_ms > 0
    # nobody answers within the queue's max wait: the flow's apology, outcome no_agent
    assert await rig.manager.wait(call_id, 30) == "no_agent"
    types = rig.types(call_id)
    assert "queue_position" in types and "queue_timeout" in types


async def test_silent_caller_is_reprompted_then_escalated(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await rig.start(media)
    transfer = await rig.event(call_id, "transfer", timeout_s=60)
    assert transfer["reason"] == "no_input"
    history = rig.session(call_id).events.history
    assert [e["type"] for e in history].count("no_input") == 2
    prompts = [e["text"] for e in history if e["type"] == "prompt_played"]
    assert any(p.startswith("다시 말씀해") for p in prompts)
    media.hang_up()
    await rig.manager.wait(call_id, 20)


async def test_caller_hangs_up_mid_prompt(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await rig.start(media)
    await rig.event(call_id, "prompt_played")
    await media.wait_bot_audio(0.5)
    media.hang_up()
    outcome = await rig.manager.wait(call_id, 20)
    assert outcome == "caller_hangup"
    detail = rig.repo.get_call(call_id)
    assert detail is not None and detail.cdr.outcome == "caller_hangup"
    assert detail.cdr.duration_s is not None and detail.cdr.duration_s < 5
    assert media.closed


async def test_server_stop_finalizes_calls_in_flight(rig: Rig) -> None:
    media = PipeMedia()
    call_id = await rig.start(media)
    await rig.event(call_id, "listen")
    await rig.manager.shutdown()
    detail = rig.repo.get_call(call_id)
    assert detail is not None and detail.cdr.outcome == "interrupted"
    assert rig.types(call_id)[-1] == "call_ended"



async def test_out_of_menu_speech_forced_onto_the_grammar_is_not_taken_as_a_choice(
        rig: Rig) -> None:
    media = PipeMedia()
    call_id = await rig.start(media)
    await rig.event(call_id, "listen")
    media.say(espeak_pcm("감사합니다", "ko", 16000).data + b"\x00" * 32000)  # "thank you"
    heard = await rig.event(call_id, "transcript", where=lambda e: e["is_final"])
    assert heard["rejected"] == "low_confidence" and heard["grammar"] is True
    assert heard["confidence"] < rig.settings.asr_grammar_min_confidence
    step = await rig.event(call_id, "flow_step", where=lambda e: e["seq"] > heard["seq"])
    assert step["decision"] == "no_match"
    media.hang_up()
    await rig.manager.wait(call_id, 20)
    turns = rig.repo.get_call(call_id).turns
    assert [(t.speaker, t.heard) for t in turns if t.speaker == "caller"] == [("caller", "unsure")]
