"""Entities from transcripts, table-driven, with an injected ``now``."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.nlu.entities import extract_entities

NOW = datetime(2026, 11, 26, 10, 0)  # a Thursday morning

CASES = [
    # spoken digit strings (order numbers)
    ("zh", "订单号是四五六七八", [("digits", "45678", "四五六七八")]),
    ("zh", "幺二三四", [("digits", "1234", "幺二三四")]),
    ("zh", "一二三四", [("digits", "1234", "一二三四")]),
    ("zh", "单号 四五6 7八 帮我查", [("digits", "45678", "四五6 7八")]),
    ("zh", "洞拐幺", [("digits", "071", "洞拐幺")]),
    ("en", "my order is four five six seven", [("digits", "4567", "four five six seven")]),
    ("en", "it's double five one two", [("digits", "5512", "double five one two")]),
    ("en", "number 45 six 7", [("digits", "4567", "45 six 7")]),
    ("en", "three oh two", [("digits", "302", "three oh two")]),
    # not digit strings
    ("zh", "我买了两台", []),
    ("zh", "一下子", []),
    ("en", "that one please", []),
    ("en", "oh hi there", []),
    # phone numbers
    ("zh", "手机一三八一二三四五六七八", [
        ("digits", "13812345678", "一三八一二三四五六七八"),
        ("phone", "+8613812345678", "一三八一二三四五六七八"),
    ]),
    ("zh", "我手机13812345678", [
        ("digits", "13812345678", "13812345678"), ("phone", "+8613812345678", "13812345678"),
    ]),
    ("en", "call me back at 415 555 2671", [
        ("digits", "4155552671", "415 555 2671"), ("phone", "+14155552671", "415 555 2671"),
    ]),
    ("en", "it's +44 20 7946 0958", [
        ("digits", "442079460958", "44 20 7946 0958"),
        ("phone", "+442079460958", "44 20 7946 0958"),
    ]),
    # dates and times
    ("zh", "明天来修", [("date", "2026-11-27", "明天")]),
    ("zh", "下周一送货", [("date", "2026-11-30", "下周一")]),
    ("zh", "明天下午三点", [("datetime", "2026-11-27T15:00", "明天下午三点")]),
    ("zh", "3月5号送", [("date", "2027-03-05", "3月5号")]),
    ("zh", "周五上午十点半", [("datetime", "2026-11-27T10:30", "周五上午十点半")]),
    ("zh", "下个月五号", [("date", "2026-12-05", "下个月五号")]),
    ("en", "next monday", [("date", "2026-11-30", "next monday")]),
    ("en", "tomorrow at 3", [("datetime", "2026-11-27T15:00", "tomorrow at 3")]),
    ("en", "can you come friday at 10 am", [("datetime", "2026-11-27T10:00", "friday at 10 am")]),
    ("en", "the fifth of march", [("date", "2027-03-05", "the fifth of march")]),
    ("en", "around 4:30 pm", [("time", "16:30", "around 4:30 pm")]),
    # money
    ("zh", "退我三百五十块", [("money", "350.00 CNY", "三百五十块")]),
    ("zh", "多扣了五十元", [("money", "50.00 CNY", "五十元")]),
    ("zh", "两千块", [("money", "2000.00 CNY", "两千块")]),
    ("zh", "一百美元", [("money", "100.00 USD", "一百美元")]),
    ("zh", "¥50", [("money", "50.00 CNY", "¥50")]),
    ("en", "it cost $12.50", [("money", "12.50 USD", "$12.50")]),
    ("en", "twelve dollars and fifty cents", [
        ("money", "12.50 USD", "twelve dollars and fifty cents"),
    ]),
    ("en", "i paid 1,299 yuan", [("money", "1299.00 CNY", "1,299 yuan")]),
    ("en", "two hundred rmb", [("money", "200.00 CNY", "two hundred rmb")]),
]


@pytest.mark.parametrize(("locale", "text", "expected"), CASES)
def test_entities(locale: str, text: str, expected: list[tuple[str, str, str]]) -> None:
    found = extract_entities(text, locale, now=NOW)
    assert [(e.kind, e.value, e.text) for e in found] == expected
    for e in found:
        assert text[e.start : e.end] == e.text


@pytest.mark.parametrize(
    "text", ["", " ", "😀" * 50, "x" * 10_000, "四" * 5000, "明天" * 3000, "$$$ ¥¥ +++ 点点点"]
)
def test_bad_text_never_raises(text: str) -> None:
    for locale in ("zh", "en", "fr"):
        assert isinstance(extract_entities(text, locale, now=NOW), list)


def test_mixed_language_text_lists_its_digits_once() -> None:
    from app.nlu.entities import extract_entities

    found = extract_entities("订单号 4567 please", "en")
    assert [(e.kind, e.value) for e in found] == [("digits", "4567")]
