"""Slots read aloud the hotline way, caller data marked uncacheable, the request kept as the
transfer's intent: the demo flow driven through the real engine."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.events import IntentResult
from app.flows.engine import FlowEngine
from app.flows.loader import check_text, load_flows
from app.flows.readings import read_as, slot_readings
from app.flows.runtime import CallContext, CallerInput, Say, Step
from app.nlu.intents import IntentCatalog, load_intents
from app.settings import PROJECT_ROOT

OPEN = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(scope="module")
def catalog() -> IntentCatalog:
    return load_intents(PROJECT_ROOT / "intents")


@pytest.fixture(scope="module")
def engine(catalog: IntentCatalog) -> FlowEngine:
    return FlowEngine(load_flows(PROJECT_ROOT / "ivr_flows", catalog.names()), catalog)


def said(text: str, intent: str) -> CallerInput:
    return CallerInput.speech(text, intent=IntentResult(
        text=text, locale="en", intent=intent, confidence=0.9, reason="ok"))


@pytest.mark.parametrize(
    ("value", "reading", "locale", "written"),
    [
        ("4567", "digits", "zh", "4 5 6 7"),
        ("+8613800138000", "digits", "en", "1 3 8 0 0 1 3 8 0 0 0"),
        ("2026-11-28", "date", "en", "2026-11-28"),
        ("Nov 28 2026", "date", "en", "2026-11-28"),
        ("128.5", "money", "zh", "128.5元"),
        ("12.5", "money", "en", "$12.5"),
        ("¥99", "money", "en", "¥99"),
        ("12345", "number", "zh", "12,345"),
        ("12345", "text", "zh", "12345"),
        ("12345", None, "zh", "12345"),
        ("soon", "date", "en", "soon"),
    ],
)
def test_read_as(value: str, reading: str | None, locale: str, written: str) -> None:
    assert read_as(value, reading, locale) == written  # type: ignore[arg-type]


def test_readings_default_by_collect_type_and_flow_map(engine: FlowEngine) -> None:
    readings = slot_readings(engine.flows["demo_hotline"])
    assert readings["order_number"] == "digits"  # collect type digits
    assert readings["callback_phone"] == "digits"  # collect type phone
    assert readings["order_eta"] == "date"  # the flow's readings map (a webhook slot)


def run(engine: FlowEngine, keys: list[str]) -> list[Step]:
    step = engine.start("demo_hotline", CallContext(
        call_id="c1", caller_number="+862161234567", hotline_number="4008001234", now=OPEN))
    steps = [step]
    for key in keys:
        step = engine.step(step.state, CallerInput.dtmf(key, at=OPEN))
        steps.append(step)
    return steps


def test_read_back_order_number_is_spoken_digit_by_digit_and_not_cached(
    engine: FlowEngine,
) -> None:
    steps = run(engine, ["2", "1", "4567#"])
    greeting = steps[0].says[0]
    assert greeting.cache is True
    confirm = steps[-1].says[-1]
    assert confirm.text.startswith("I heard 4 5 6 7, is that right?")
    assert confirm.cache is False  # caller data: never kept on disk by the TTS


def test_order_result_reads_the_eta_as_a_date(engine: FlowEngine) -> None:
    steps = run(engine, ["2", "1", "4567#", "1"])
    webhook = steps[-1].webhook
    assert webhook is not None and webhook.url == "/demo/orders/4567"
    result = engine.step(steps[-1].state, CallerInput.webhook_result(
        True, 200, {"item_en": "front-load washer", "status_en": "has shipped",
                    "eta": "2026-11-28", "item_zh": "洗衣机", "status_zh": "已发货"}, at=OPEN))
    order = next(s for s in result.says if s.text.startswith("Your order"))
    assert order == Say(text="Your order 4 5 6 7, a front-load washer, has shipped. Expected "
                        "delivery 2026-11-28.", locale="en", voice="en-us", cache=False,
                        display="Your order 4567, a front-load washer, has shipped. Expected "
                        "delivery 2026-11-28.")  # a chat shows the number as written


def test_transfer_after_yes_keeps_the_request_as_intent(engine: FlowEngine) -> None:
    step = run(engine, ["2"])[-1]  # English main menu
    step = engine.step(step.state, said("can I talk to a real person please", "talk_to_agent"))
    assert step.state.phase == "agent_confirm"
    step = engine.step(step.state, said("yes please", "affirm"))
    assert step.transfer is not None and step.transfer.reason == "caller_request"
    assert "intent=talk_to_agent" in step.transfer.note
    assert "affirm" not in step.transfer.note


FLOW = """\
id: f
locales: [zh, en]
default_locale: zh
start: a
queues: {general: {}}
globals: {talk_to_agent: {queue: general}}
readings: {amount: money}
nodes:
  a:
    kind: collect
    slot: n
    type: digits
    reading: number
    prompt: {zh: 请输入, en: Enter it}
    next: b
  b:
    kind: menu
    prompt:
      zh: 请按
      en: 안녕 press
    options:
      - {dtmf: "0", next: c}
      - {dtmf: "*", next: c}
      - {dtmf: "1", next: c}
      - {dtmf: "1", next: c}
  c: {kind: hangup}
"""


def test_flow_check_finds_clashing_keys_and_unspeakable_prompts() -> None:
    voices = {"zh": "cmn-latn-pinyin", "en": "en-us"}
    flow, errors = check_text(FLOW, Path("f.yaml"), None, voices)
    assert flow is None
    got = [(e.line, e.reason) for e in errors]
    assert (20, "no voice can read '안', '녕' in the 'en' prompt (voices: en, zh)") in got
    assert any(line == 22 and "'0' hides the agent key" in r for line, r in got)
    assert any(line == 23 and "'*' never reaches this option: it is the repeat key" in r
               for line, r in got)
    assert (25, "DTMF key '1' used twice in menu 'b' (options 3 and 4)") in got
    fixed = FLOW.replace("안녕 press", "Press").replace('"0"', '"2"').replace('"*"', '"3"')
    fixed = fixed.replace('- {dtmf: "1", next: c}\n      - {dtmf: "1"', '- {dtmf: "1"')
    flow, errors = check_text(fixed, Path("f.yaml"), None, voices)
    assert errors == [] and flow is not None
    assert slot_readings(flow)["n"] == "number" and slot_readings(flow)["amount"] == "money"
    _, missing = check_text(fixed, Path("f.yaml"), None, {"zh": "cmn-latn-pinyin"})
    assert [(e.line, e.reason) for e in missing] == [
        (2, "locale 'en' has no voice (settings tts_voices has: zh)")]
