"""Live calls to the zh/en demo hotline: the real classifier, flows, espeak TTS, the demo
order service and the call record; the recognizer is scripted at the ASR seam
(``tests.fakes.ScriptedRecognizer``: no zh/en Vosk model is installed here; the Korean
model covers the acoustic path in ``test_session.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from app.demo.orders import create_demo_app
from app.nlu.service import NluService
from app.services import build_services
from app.settings import PROJECT_ROOT, Settings
from tests.call.conftest import Rig, rig_settings
from tests.fakes import PipeMedia, ScriptedRecognizer
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

DEMO = "4008001234"
WEDNESDAY_10AM_SHANGHAI = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)

pytestmark = needs(have_espeak(), "espeak-ng")


@pytest.fixture(scope="module")
def demo_nlu() -> NluService:
    nlu = NluService(Settings(intent_train_on_start=False))
    problem = nlu.load()
    assert problem is None, f"the shipped demo intent model does not load: {problem}"
    return nlu


@pytest_asyncio.fixture
async def demo(tmp_path: Path, demo_nlu: NluService) -> AsyncIterator[tuple[Rig,
                                                                            ScriptedRecognizer]]:
    settings = rig_settings(tmp_path, [PROJECT_ROOT / "ivr_flows" / "demo_hotline.yaml"],
                            asr_models={}, queue_max_wait_s=30.0)
    asr = ScriptedRecognizer()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_demo_app()),
                             base_url="http://demo")
    services = await build_services(settings, asr=asr, nlu=demo_nlu,  # type: ignore[arg-type]
                                    http=http, clock=lambda: WEDNESDAY_10AM_SHANGHAI)
    try:
        yield Rig(services, settings), asr
    finally:
        await services.aclose()


async def _after(rig: Rig, call_id: str, event_type: str, after: dict[str, Any],
                 timeout_s: float = 60, **match: Any) -> dict[str, Any]:
    """The first ``event_type`` event after ``after`` whose fields include ``match``."""
    return await rig.event(
        call_id, event_type, timeout_s,
        where=lambda e: e["seq"] > after["seq"] and all(e.get(k) == v for k, v in match.items()),
    )


async def _press(media: PipeMedia, keys: str) -> None:
    for key in keys:
        media.press(key)


async def test_zh_caller_asks_by_voice_then_keys_an_order_number(demo: Any) -> None:
    rig, asr = demo
    media = PipeMedia()
    call_id = await rig.start(media, number=DEMO, locale=None)
    language = await rig.event(call_id, "node_entered", where=lambda e: e["node"] == "language")
    await _after(rig, call_id, "listen", language)
    asr.say("我想查一下我的订单到哪了")
    intent = await _after(rig, call_id, "intent", language)
    assert intent["intent"] == "order_status"
    collect = await _after(rig, call_id, "node_entered", language, node="order_number")
    await _after(rig, call_id, "listen", collect)
    await _press(media, "4567#")
    confirm = await _after(rig, call_id, "flow_step", collect, decision="confirm")
    assert confirm["value"] == "4567"
    await _after(rig, call_id, "listen", confirm)
    media.press("1")
    result = await _after(rig, call_id, "webhook", confirm, phase="result")
    assert result["ok"] is True and result["status"] == 200
    status = await _after(rig, call_id, "prompt_played", result)
    assert "滚筒洗衣机" in status["text"] and "已发货" in status["text"]
    more = await _after(rig, call_id, "node_entered", result, node="anything_else")
    await _after(rig, call_id, "listen", more)
    media.press("2")
    assert await rig.manager.wait(call_id, 60) == "self_service"

    detail = rig.repo.get_call(call_id)
    assert detail.cdr.final_intent == "order_status" and detail.cdr.locale == "zh"
    assert ("caller", "我想查一下我的订单到哪了") in [(t.speaker, t.text) for t in detail.turns]
    dtmf = [e.payload["digit"] for e in detail.events if e.type == "dtmf"]
    assert "".join(dtmf) == "4567#12"
    assert "order_lookup" in detail.flow_path and detail.flow_path[-1] == "goodbye_end"
    latency = [e for e in detail.events if e.type == "turn_latency"]
    assert latency and latency[0].payload["ms"] > 0
    assert not [e for e in detail.events if e.type in ("tts_failed", "error")]


async def test_en_caller_switches_language_and_asks_for_a_person(demo: Any) -> None:
    rig, asr = demo
    media = PipeMedia()
    call_id = await rig.start(media, number=DEMO, locale=None, caller="+14155550123")
    language = await rig.event(call_id, "node_entered", where=lambda e: e["node"] == "language")
    await _after(rig, call_id, "listen", language)
    media.press("2")
    changed = await _after(rig, call_id, "locale_changed", language)
    assert changed["locale"] == "en"
    menu = await _after(rig, call_id, "node_entered", language, node="main_menu")
    menu_prompt = await _after(rig, call_id, "prompt_played", menu)
    assert menu_prompt["locale"] == "en" and menu_prompt["text"].startswith("Tell me briefly")
    await _after(rig, call_id, "listen", menu)
    asr.say("can I talk to a real person please")
    intent = await _after(rig, call_id, "intent", menu)
    assert intent["intent"] == "talk_to_agent"
    await _after(rig, call_id, "listen", intent)  # "Would you like to speak to an agent?"
    media.press("1")
    handoff = await _after(rig, call_id, "handoff_requested", intent)
    assert handoff["queue"] == "general" and handoff["intent"] == "talk_to_agent"
    said = [(t["speaker"], t["text"]) for t in handoff["transcript"]]
    assert ("caller", "can I talk to a real person please") in said
    assert said[0][0] == "bot" and "main_menu" in handoff["flow_path"]
    decided = await _after(rig, call_id, "routing_decision", handoff)
    assert decided["rule"] == "english" and decided["target"] == "group en_service"
    # nobody is signed in to the English group: it overflows at once, to the flow's busy path
    await _after(rig, call_id, "queue_timeout", handoff)
    await _after(rig, call_id, "node_entered", handoff, node="busy_offer")
    media.hang_up()
    assert await rig.manager.wait(call_id, 30) != "agent_handled"
    detail = rig.repo.get_call(call_id)
    assert detail.cdr.locale == "en" and detail.cdr.handoff_target == "general"
    assert detail.cdr.end_reason == "caller_hangup" and detail.cdr.routing_rule == "english"


async def test_keys_without_the_pound_key_are_taken_after_the_inter_digit_pause(
        demo: Any) -> None:
    rig, _ = demo
    media = PipeMedia()
    call_id = await rig.start(media, number=DEMO, locale="zh")
    language = await rig.event(call_id, "node_entered", where=lambda e: e["node"] == "language")
    await _after(rig, call_id, "listen", language)
    media.press("1")
    menu = await _after(rig, call_id, "node_entered", language, node="main_menu")
    await _after(rig, call_id, "listen", menu)
    media.press("1")
    collect = await _after(rig, call_id, "node_entered", menu, node="order_number")
    await _after(rig, call_id, "listen", collect)
    await _press(media, "1234")  # no "#": the digits are taken 3 s after the last key
    step = await _after(rig, call_id, "flow_step", collect, decision="confirm")
    assert step["value"] == "1234" and step["input"] == "dtmf:1234"
    media.hang_up()
    assert await rig.manager.wait(call_id, 30) == "caller_hangup"


async def test_speech_recognition_dying_mid_call_leaves_the_keypad(demo: Any) -> None:
    rig, asr = demo
    media = PipeMedia()
    call_id = await rig.start(media, number=DEMO, locale="zh")
    language = await rig.event(call_id, "node_entered", where=lambda e: e["node"] == "language")
    await _after(rig, call_id, "listen", language)
    asr.fail("decoder process died")
    lost = await _after(rig, call_id, "speech_unavailable", language)
    assert "decoder process died" in lost["reason"]
    media.press("1")
    menu = await _after(rig, call_id, "node_entered", lost, node="main_menu")
    listen = await _after(rig, call_id, "listen", menu)
    assert listen["keypad_only"] is True
    media.press("1")
    await _after(rig, call_id, "node_entered", menu, node="order_number")
    media.hang_up()
    assert await rig.manager.wait(call_id, 30) == "caller_hangup"
    types = rig.types(call_id)
    assert "error" not in types and types[-1] == "call_ended"


async def test_the_recognizers_second_reading_wins_when_only_it_names_an_intent(
        demo: Any) -> None:
    rig, asr = demo
    media = PipeMedia()
    call_id = await rig.start(media, number=DEMO, locale="zh")
    language = await rig.event(call_id, "node_entered", where=lambda e: e["node"] == "language")
    await _after(rig, call_id, "listen", language)
    media.press("1")
    menu = await _after(rig, call_id, "node_entered", language, node="main_menu")
    await _after(rig, call_id, "listen", menu)
    asr.say("今天天气怎么样", confidence=0.55,
            alternatives=[("今天天气怎么样", 0.55), ("我想查一下我的订单", 0.45)])
    intent = await _after(rig, call_id, "intent", menu)
    assert (intent["intent"], intent["alternative"]) == ("order_status", 1)
    heard = await _after(rig, call_id, "transcript", menu, is_final=True)
    assert [a["text"] for a in heard["alternatives"]] == ["今天天气怎么样", "我想查一下我的订单"]
    await _after(rig, call_id, "node_entered", intent, node="order_number")
    media.hang_up()
    assert await rig.manager.wait(call_id, 30) == "caller_hangup"
