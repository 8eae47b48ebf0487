"""The chat's parts on their own: the wire protocol's parser, the questions a flow state
becomes (buttons, inputs), the typed-language guess, the rate limiters, the origin rule."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.api.chat import origin_allowed
from app.chat.form import ask_for, typed_locale
from app.chat.limits import KeyedLimiter, TokenBucket
from app.chat.protocol import ButtonIn, ChatInputError, EndIn, TextIn, clean_text, parse_client
from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.flows.runtime import CallContext, CallerInput, Listen, Step
from app.settings import PROJECT_ROOT

AT_10AM = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_client_frames_parse_to_messages() -> None:
    assert parse_client('{"type": "text", "text": "  我想查订单 "}', 100) == TextIn("我想查订单")
    assert parse_client('{"type": "button", "value": "4567#", "ask": 3}', 100) == ButtonIn(
        "4567#", 3)
    assert parse_client('{"type": "end"}', 100) == EndIn()


@pytest.mark.parametrize(("raw", "field", "reason"), [
    ("{", "(frame)", "not JSON: Expecting property name enclosed in double quotes: line 1 "
                     "column 2 (char 1)"),
    ('"text"', "(frame)", "a JSON object with a type is expected"),
    ('{"text": "hi"}', "type", "one of text, button, end is expected"),
    ('{"type": "end", "why": "bye"}', "why", "unknown field in a end message"),
    ('{"type": "text"}', "text", "a string is expected"),
    ('{"type": "text", "text": "12345678901"}', "text", "at most 10 characters, got 11"),
    ('{"type": "text", "text": "\\u200f\\u0007"}', "text", "the message is empty"),
    ('{"type": "button"}', "value", "the button's value (a string) is expected"),
    ('{"type": "button", "value": "<b>"}', "value", "a button value is keypad keys (0-9 * #)"),
    ('{"type": "button", "value": "1", "ask": true}', "ask",
     "the seq of the question (an integer >= 1) is expected"),
    ('{"type": "button", "value": "1", "ask": 0}', "ask",
     "the seq of the question (an integer >= 1) is expected"),
])
def test_bad_client_frames_name_the_field_and_the_reason(raw: str, field: str,
                                                         reason: str) -> None:
    with pytest.raises(ChatInputError) as err:
        parse_client(raw, 10)
    assert (err.value.field, err.value.reason) == (field, reason)
    assert err.value.reply() == {"type": "error", "field": field, "reason": reason}


def test_typed_text_is_cleaned_but_html_is_kept_as_text() -> None:
    assert clean_text("\u202eevil\u202c <b>hi</b>\x00\r\n") == "evil <b>hi</b>"
    assert clean_text("line 1\nline 2\ttab") == "line 1\nline 2\ttab"
    assert clean_text("e\u0301") == "\u00e9"  # NFC


@pytest.fixture(scope="module")
def engine() -> FlowEngine:
    return FlowEngine(load_flows(PROJECT_ROOT / "ivr_flows"))


def _walk(engine: FlowEngine, *inputs: CallerInput, caller: str = "+862161234567",
          at: datetime = AT_10AM) -> Step:
    step = engine.start("demo_hotline", CallContext(caller_number=caller, now=at))
    for inp in inputs:
        step = engine.step(step.state, inp)
        while step.state.phase == "webhook":
            step = engine.step(step.state, CallerInput.webhook_result(
                True, 200, {"item_zh": "x", "item_en": "x", "status_zh": "x",
                            "status_en": "x", "eta": "x"}))
    return step


def _ask(engine: FlowEngine, step: Step) -> tuple[list[tuple[str, str]], dict[str, object]]:
    listen = step.listen
    assert listen is not None
    ask = ask_for(engine.flows["demo_hotline"], step.state, listen)
    return [(b.value, b.label) for b in ask.buttons], ask.input.model_dump(exclude_none=True)


def test_menus_become_buttons_with_their_labels_and_the_agent_key(engine: FlowEngine) -> None:
    key = CallerInput.dtmf
    assert _ask(engine, _walk(engine))[0] == [("1", "中文"), ("2", "English"), ("0", "人工服务")]
    buttons, hint = _ask(engine, _walk(engine, key("2")))
    assert buttons == [("1", "Order status"), ("2", "Returns and refunds"), ("3", "Repairs"),
                       ("4", "Product questions"), ("5", "Complaints"),
                       ("0", "Talk to an agent")]
    assert hint == {"kind": "text", "multiline": False}
    repairs = _ask(engine, _walk(engine, key("1"), key("3")))[0]
    assert repairs[:2] == [("1", "洗衣机"), ("2", "冰箱")]


def test_collect_nodes_become_inputs_and_confirmations_buttons(engine: FlowEngine) -> None:
    key = CallerInput.dtmf
    buttons, hint = _ask(engine, _walk(engine, key("1"), key("1")))
    assert buttons == [] and hint == {"kind": "digits", "min_length": 4, "max_length": 12,
                                      "multiline": False}
    confirm = _walk(engine, key("1"), key("1"), CallerInput.speech("4567"))
    assert confirm.state.phase == "confirm"
    assert _ask(engine, confirm)[0] == [("1", "正确"), ("2", "重新输入")]
    phone = _ask(engine, _walk(engine, key("1"), key("3"), key("1")))[1]
    assert phone == {"kind": "phone", "multiline": False}


def test_the_closed_hours_offer_and_the_callback(engine: FlowEngine) -> None:
    night = datetime(2026, 11, 26, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    key = CallerInput.dtmf
    offer = _ask(engine, _walk(engine, key("2"), at=night))[0]
    assert offer[:3] == [("1", "Callback"), ("2", "Leave a message"), ("3", "Order status")]
    callback = _walk(engine, key("2"), key("1"), at=night)
    assert _ask(engine, callback) == ([("1", "Confirm"), ("2", "Another number")],
                                      {"kind": "phone", "multiline": False})
    anonymous = _walk(engine, key("2"), key("1"), at=night, caller="")
    assert anonymous.state.phase == "callback_number"  # nobody's number to offer: asked
    assert _ask(engine, anonymous) == ([], {"kind": "phone", "multiline": False})
    voicemail = _ask(engine, _walk(engine, key("2"), key("2"), at=night))
    assert voicemail == ([], {"kind": "text", "multiline": True})


def test_a_typed_message_is_understood_in_the_menus_language_it_is_written_in() -> None:
    both = Listen(timeout_s=6, locale="zh", alt_locales=["en"])
    assert typed_locale("where is my order", both) == "en"
    assert typed_locale("我的订单 4567", both) == "zh"
    assert typed_locale("4567", both) is None  # digits: the call's language
    assert typed_locale("where is my order", Listen(timeout_s=6, locale="zh")) is None


def test_a_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(per_minute=60, burst=2, updated_s=0.0)
    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(1.0)  # one a second: wait 1 s
    assert bucket.take(0.5) == pytest.approx(0.5)
    assert bucket.take(1.0) == 0.0
    with pytest.raises(ValueError, match="per_minute > 0 and burst >= 1"):
        TokenBucket(per_minute=0, burst=1)


def test_keyed_limits_are_per_key_and_bounded() -> None:
    limiter = KeyedLimiter(per_minute=6, burst=1, max_keys=2)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) == pytest.approx(10.0)
    assert limiter.take("b", 0.0) == 0.0  # another address has its own bucket
    limiter.take("c", 0.0)
    assert len(limiter) == 2  # "a", the least recently used, was dropped


@pytest.mark.parametrize(("origin", "allowed", "ok"), [
    (None, [], True),  # not a browser page
    ("http://hotline.example:8080", [], True),  # the server's own origin
    ("http://hotline.example:8081", [], False),
    ("https://shop.example", ["https://shop.example/"], True),
    ("https://evil.example", ["https://shop.example"], False),
    ("null", [], False),
    ("https://anyone.example", ["*"], True),
])
def test_browsers_use_the_chat_only_from_allowed_origins(origin: str | None,
                                                         allowed: list[str], ok: bool) -> None:
    assert origin_allowed(origin, "hotline.example:8080", allowed) is ok


def test_a_prompt_read_aloud_differently_carries_the_text_a_screen_shows(
        engine: FlowEngine) -> None:
    key = CallerInput.dtmf
    step = _walk(engine, key("1"), key("1"), CallerInput.speech("4567"), key("1"))
    result = next(s for s in step.says if "滚筒" in s.text or "x" in s.text)
    assert "4 5 6 7" in result.text  # spoken digit by digit
    assert result.display is not None and "4567" in result.display
    assert "4 5 6 7" not in result.display
    menu = _walk(engine, key("1")).says[-1]
    assert menu.display is None  # nothing read differently: the spoken text is shown
