"""The flow engine, driven as the call session drives it: start, then one input per step."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.events import IntentResult, Sentiment
from app.flows.engine import FlowEngine
from app.flows.loader import load_flow
from app.flows.runtime import CallContext, CallerInput, FlowState, Say, Step
from app.flows.schema import Flow
from app.nlu.intents import IntentCatalog, load_intents
from app.settings import PROJECT_ROOT

DATA = Path(__file__).parent / "data"
SH = ZoneInfo("Asia/Shanghai")
OPEN = datetime(2026, 11, 26, 10, 0, tzinfo=SH)  # Thursday morning


@pytest.fixture(scope="module")
def catalog() -> IntentCatalog:
    return load_intents(PROJECT_ROOT / "intents")


@pytest.fixture(scope="module")
def flows(catalog: IntentCatalog) -> dict[str, Flow]:
    names = catalog.names()
    return {f.id: f for f in (load_flow(DATA / "small.yaml", names),
                              load_flow(DATA / "ko_menu.yaml", names))}


@pytest.fixture(scope="module")
def engine(flows: dict[str, Flow], catalog: IntentCatalog) -> FlowEngine:
    return FlowEngine(flows, catalog)


def said(text: str, intent: str | None, locale: str = "en", conf: float = 0.9,
         sentiment: float | None = None) -> CallerInput:
    result = IntentResult(text=text, locale=locale, intent=intent,
                          confidence=conf if intent else 0.1,
                          reason="ok" if intent else "low_confidence")
    senti = None
    if sentiment is not None:
        senti = Sentiment(score=sentiment, label="negative" if sentiment < 0 else "positive")
    return CallerInput.speech(text, intent=result, sentiment=senti)


def start(engine: FlowEngine, at: datetime = OPEN, caller: str = "+862161234567") -> Step:
    return engine.start("small", CallContext(call_id="c1", caller_number=caller, now=at))


def test_greeting_then_menu_listen(engine: FlowEngine) -> None:
    step = start(engine)
    assert step.says[0] == Say(text="Hello", locale="en", barge_in=False)
    assert step.says[1].text.startswith("Billing, press 1")
    listen = step.listen
    assert listen is not None and listen.grammar is None and listen.dtmf_allowed
    assert step.state.node == "menu" and step.state.path == ["hello", "open_check", "menu"]
    assert [e["decision"] for e in step.events] == ["enter", "enter", "case:0", "enter"]


@pytest.mark.parametrize(
    ("at", "outcome"),
    [(datetime(2026, 11, 26, 20, 0, tzinfo=SH), "closed"),
     (datetime(2026, 10, 1, 10, 0, tzinfo=SH), "holiday")],
)
def test_calendar_branch(engine: FlowEngine, at: datetime, outcome: str) -> None:
    step = start(engine, at)
    assert step.hangup is not None and step.hangup.outcome == outcome
    assert step.state.done


def test_keypad_and_speech_take_the_same_path(engine: FlowEngine) -> None:
    s0 = start(engine)
    by_key = engine.step(s0.state, CallerInput.dtmf("1"))
    by_phrase = engine.step(s0.state, said("uh billing please", None))
    by_intent = engine.step(s0.state, said("I was charged twice", "payment_issue"))
    for step in (by_key, by_phrase, by_intent):
        assert step.transfer is not None and step.transfer.queue == "billing"
        assert step.transfer.reason == "billing"
    assert by_intent.events[0]["confidence"] == pytest.approx(0.9)


def test_negative_caller_goes_to_the_senior_branch(engine: FlowEngine) -> None:
    s0 = start(engine)
    step = engine.step(s0.state, said("billing, and I'm furious", None, sentiment=-0.9))
    assert step.transfer is not None and step.transfer.reason == "unhappy_billing"


def test_beijing_caller_branch_uses_the_number_region(engine: FlowEngine) -> None:
    s0 = start(engine, caller="+861062345678")
    assert s0.state.caller_region == {"zh": "北京市", "en": "Beijing"}
    step = engine.step(s0.state, CallerInput.dtmf("1"))
    assert step.transfer is not None and step.transfer.reason == "billing_beijing"
    assert step.transfer.note == "region Beijing"


def test_collect_confirm_webhook_and_nested_response_field(engine: FlowEngine) -> None:
    s = engine.step(start(engine).state, CallerInput.dtmf("2"))
    assert s.listen is not None and s.listen.max_digits == 6 and s.listen.terminator == "#"
    s = engine.step(s.state, CallerInput.dtmf("1234#"))
    assert "1 2 3 4" in s.text and s.state.phase == "confirm"
    s = engine.step(s.state, said("yes", "affirm"))
    hook = s.webhook
    assert hook is not None and hook.url == "http://127.0.0.1:9/accounts/1234"
    waiting = engine.step(s.state, said("hello?", None))  # speech while the lookup runs
    assert waiting.actions == [] and waiting.state.phase == "webhook"
    done = engine.step(s.state, CallerInput.webhook_result(True, 200, {"balance": {"amount": 42}}))
    assert done.says[0].text == "Your balance is 42"
    assert done.hangup is not None and done.hangup.outcome == "done"
    garbage = engine.step(s.state, CallerInput.webhook_result(True, 200, {"other": 1}))
    assert garbage.transfer is not None and garbage.transfer.queue == "billing"
    assert garbage.transfer.note == "billing for 1234"
    failed = engine.step(s.state, CallerInput.webhook_result(False, 500, error="server error"))
    assert failed.transfer is not None and failed.transfer.reason == "billing"


def test_invalid_digits_reprompt_then_escalate(engine: FlowEngine) -> None:
    s = engine.step(start(engine).state, CallerInput.dtmf("2"))
    s = engine.step(s.state, CallerInput.dtmf("12#"))
    assert s.state.node == "account" and "try again" in s.text
    s = engine.step(s.state, CallerInput.dtmf("12#"))
    assert s.transfer is not None and s.transfer.reason == "collect_failed"


def test_no_match_escalates_instead_of_looping(engine: FlowEngine) -> None:
    s = start(engine)
    s = engine.step(s.state, said("blah", None))
    assert s.text.startswith("Sorry, I didn't understand.") and s.listen is not None
    s = engine.step(s.state, said("blah blah", None))
    assert s.transfer is not None and s.transfer.reason == "no_match"
    assert s.state.counters == {"no_match": 2}


def test_no_input_escalates(engine: FlowEngine) -> None:
    s = start(engine)
    s = engine.step(s.state, CallerInput.no_input())
    assert "didn't hear" in s.text
    s = engine.step(s.state, CallerInput.no_input())
    assert s.transfer is not None and s.transfer.reason == "no_input"


def test_agent_request_confirmed_once(engine: FlowEngine) -> None:
    s = start(engine)
    s = engine.step(s.state, said("agent", "talk_to_agent"))
    assert s.state.phase == "agent_confirm" and "speak to an agent" in s.text
    s = engine.step(s.state, CallerInput.dtmf("2"))
    assert s.state.phase == "listen" and s.state.node == "menu"
    s = engine.step(s.state, said("agent now", "talk_to_agent"))
    assert s.transfer is not None and s.transfer.queue == "general"
    assert s.transfer.reason == "caller_request"


def test_star_repeats_and_zero_transfers(engine: FlowEngine) -> None:
    s0 = start(engine)
    again = engine.step(s0.state, CallerInput.dtmf("*"))
    assert [a.text for a in again.says] == ["Hello", s0.says[1].text]
    assert again.listen == s0.listen and again.state.attempts == {}
    zero = engine.step(s0.state, CallerInput.dtmf("0"))
    assert zero.transfer is not None and zero.transfer.reason == "caller_request"


def test_goodbye_ends_politely(engine: FlowEngine) -> None:
    s = engine.step(start(engine).state, said("bye", "goodbye"))
    assert "Goodbye" in s.text and s.hangup is not None
    after = engine.step(s.state, CallerInput.dtmf("1"))
    assert after.actions == [] and after.events[0]["decision"] == "ignored_after_end"


def test_answer_node_uses_the_intent_catalog(engine: FlowEngine, flows: dict[str, Flow]
                                             ) -> None:
    s = engine.step(start(engine).state, said("when are you open", "business_hours"))
    assert "8 am to 10 pm" in s.says[0].text and s.state.node == "menu"
    bare = FlowEngine(flows, None)  # no catalog: the fallback branch
    s = bare.step(start(bare).state, said("when are you open", "business_hours"))
    assert s.transfer is not None and s.transfer.queue == "billing"


def test_state_survives_a_json_round_trip_mid_call(engine: FlowEngine) -> None:
    s = engine.step(start(engine).state, CallerInput.dtmf("2"))
    s = engine.step(s.state, CallerInput.dtmf("5555#"))
    restored = FlowState.model_validate_json(s.state.model_dump_json())
    assert restored == s.state
    a = engine.step(s.state, CallerInput.dtmf("1"))
    b = engine.step(restored, CallerInput.dtmf("1"))
    assert a.actions == b.actions and a.state == b.state


def test_internal_problem_becomes_a_flow_error_transfer(engine: FlowEngine) -> None:
    s = start(engine)
    broken = s.state.model_copy(update={"node": "no_such_node"})
    step = engine.step(broken, CallerInput.dtmf("1"))
    assert step.transfer is not None and step.transfer.reason == "flow_error"
    assert step.transfer.queue == "general" and step.state.done
    assert "went wrong" in step.text and step.events[0]["decision"] == "flow_error"


def test_korean_menu_uses_a_grammar(engine: FlowEngine) -> None:
    s = engine.start("ko_menu", CallContext(now=OPEN))
    assert s.listen is not None and s.listen.grammar == ["하나", "둘", "셋"]
    assert s.listen.locale == "ko"
    two = engine.step(s.state, CallerInput.speech("둘"))
    assert two.hangup is not None and two.hangup.outcome == "ko_two"
    assert two.state.slots == {"choice": "two"}
    agent = engine.step(s.state, said("상담원", "talk_to_agent", locale="ko"))
    assert agent.transfer is not None and agent.transfer.reason == "caller_request"
