"""Sentiment per turn (sign on clear examples) and the call-level trend."""

from __future__ import annotations

import pytest

from app.nlu.sentiment import LexiconSentiment, SentimentTrend


@pytest.fixture(scope="module")
def analyzer() -> LexiconSentiment:
    return LexiconSentiment()


@pytest.mark.parametrize(
    ("locale", "text", "label"),
    [
        ("zh", "你们的服务太差了 我要投诉", "negative"),
        ("zh", "气死我了 等了一个月都没人管", "negative"),
        ("zh", "我受够了 你们就是骗子", "negative"),
        ("zh", "太好了 非常感谢 很满意", "positive"),
        ("zh", "谢谢你 师傅很专业", "positive"),
        ("en", "this is terrible service and i am furious", "negative"),
        ("en", "i hate this you people are useless", "negative"),
        ("en", "thank you so much that's great", "positive"),
        ("en", "awesome you've been really helpful", "positive"),
    ],
)
def test_clear_examples_get_the_right_sign(
    analyzer: LexiconSentiment, locale: str, text: str, label: str
) -> None:
    found = analyzer.score(text, locale)
    assert found.label == label, found
    assert (found.score < 0) == (label == "negative")


@pytest.mark.parametrize("text", ["", "   ", "😀😡" * 100, "a" * 10_000, "嗯"])
def test_bad_text_scores_without_raising(analyzer: LexiconSentiment, text: str) -> None:
    for locale in ("zh", "en", "xx"):
        found = analyzer.score(text, locale)
        assert -1.0 <= found.score <= 1.0


def test_trend_flags_a_caller_getting_angrier(analyzer: LexiconSentiment) -> None:
    trend = SentimentTrend()
    for text in ["你好 我想查个订单", "怎么还没到啊", "太过分了 等了一个月", "我要投诉 气死我了"]:
        trend.add(analyzer.score(text, "zh").score)
    assert trend.trend < 0
    assert trend.escalating


def test_trend_is_calm_for_a_calm_caller() -> None:
    trend = SentimentTrend()
    assert not trend.escalating and trend.trend == 0.0
    for score in (0.1, 0.0, 0.2, 0.3):
        trend.add(score)
    assert trend.trend > 0
    assert not trend.escalating
