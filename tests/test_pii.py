"""Personal data in text: what is found, how it is masked, what is left alone."""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog

from app.log import configure_logging, get_logger
from app.pii import (
    Redactor,
    classify,
    cn_id_ok,
    find,
    live_secrets,
    luhn_ok,
    mask_json,
    mask_text,
)

CARD = "4539148803436467"
CN_ID = "11010519491231002X"


@pytest.mark.parametrize(("text", "masked", "kinds"), [
    # cards: Luhn-valid 13-19 digits, however written
    (f"card {CARD}#", "card ************6467#", ["card"]),
    ("4539 1488 0343 6467", "**** **** **** 6467", ["card"]),
    ("4539-1488-0343-6467", "****-****-****-6467", ["card"]),
    ("四五三九一四八八零三四三六四六七", "************六四六七", ["card"]),
    ("four five three nine one four eight eight zero three four three six four six seven",
     "* * * * * * * * * * * * six four six seven", ["card"]),
    # Chinese resident ID: 17 digits and a check character (X included)
    (f"身份证{CN_ID}谢谢", "身份证**************002X谢谢", ["cn_id"]),
    ("110105194912310021", "**************0021", ["bank_account"]),  # bad check: an account
    # personal phones (with a country code, Chinese mobiles and landlines)
    ("call 13800138000", "call *******8000", ["phone"]),
    ("+86 138-0013-8000", "+** ***-****-8000", ["phone"]),
    ("+1 415 555 0123", "+* *** *** 0123", ["phone"]),
    ("021-61234567", "***-****4567", ["phone"]),
    # long digit runs without a check: bank accounts
    ("acct 6222021234567890123", "acct ***************0123", ["bank_account"]),
    # left alone: business numbers, order numbers, menu keys, times, amounts
    ("hotline 4008001234", "hotline 4008001234", []),
    ("order 123456789012", "order 123456789012", []),
    ("press 1 or 2", "press 1 or 2", []),
    ("at 2026-11-30T09:01:02.123456+00:00", "at 2026-11-30T09:01:02.123456+00:00", []),
    ("¥1,299.00 for 3 items", "¥1,299.00 for 3 items", []),
    ("one of two", "one of two", []),
])
def test_mask_text(text: str, masked: str, kinds: list[str]) -> None:
    assert [f.kind for f in find(text)] == kinds
    assert mask_text(text) == masked


def test_checks() -> None:
    assert luhn_ok(CARD) and not luhn_ok("4539148803436468") and not luhn_ok("12a4")
    assert cn_id_ok(CN_ID) and cn_id_ok(CN_ID.lower()) and not cn_id_ok("110105194912310020")
    assert classify(CARD) == "card" and classify("13800138000") == "phone"
    assert classify("4008001234") is None  # a shared-cost 400 number is not personal
    assert classify("8613800138000") == "phone"


def test_only_the_kinds_asked_for_are_masked() -> None:
    text = f"card {CARD}, phone 13800138000"
    assert mask_text(text, kinds=["card"]) == "card ************6467, phone 13800138000"
    assert mask_text(text, kinds=[]) == text


def test_secrets_are_masked_whole_in_any_spelling() -> None:
    secrets = ["1234"]  # a PIN: short, no check digit
    assert mask_text("I heard 1 2 3 4, press 1 for yes", secrets=secrets) == \
        "I heard * * * *, press 1 for yes"
    assert mask_text("一二三四", secrets=secrets) == "****"
    assert mask_text("the order 991234 ships", secrets=secrets) == "the order ****** ships"
    assert mask_text("my password is open sesame", secrets=["open sesame"]) == \
        "my password is [sensitive]"


def test_mask_json_keeps_identifiers_and_walks_everything_else() -> None:
    value: dict[str, Any] = {
        "type": "flow_step", "call_id": "13800138000", "hotline_number": "02161234567",
        "input": "dtmf:13800138000#", "nested": [{"text": f"card {CARD}"}, 7, None, True],
    }
    masked = mask_json(value)
    assert masked["call_id"] == "13800138000" and masked["hotline_number"] == "02161234567"
    assert masked["input"] == "dtmf:*******8000#"
    assert masked["nested"] == [{"text": "card ************6467"}, 7, None, True]
    assert value["input"] == "dtmf:13800138000#"  # a copy


def test_redactor_registers_live_secrets_for_the_logs(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    redactor = Redactor(owner="call-1")
    redactor.add_secret("987654")
    redactor.add_secret("12")  # too short to match safely: left to the event masking
    assert "987654" in live_secrets() and "12" not in live_secrets()
    configure_logging("INFO", json_logs=True)
    try:
        get_logger(call_id="call-1").info("webhook", url="/pay?pin=987654",
                                          caller="+8613800138000", card=CARD)
        redactor.close()
        get_logger().info("after", pin="987654")
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["url"] == "/pay?pin=******" and lines[0]["call_id"] == "call-1"
    assert lines[0]["caller"] == "+*********8000" and lines[0]["card"] == "************6467"
    assert lines[1]["pin"] == "987654"  # the call ended: its secret is forgotten
