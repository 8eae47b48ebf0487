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


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("zh", "我想查一下订单"), ("zh", "请问你们几点开门"),
        ("zh", "我的手机号是一三八一二三四五六七八"),
        ("zh", "帮我转人工"), ("zh", "麻烦帮我看一下发票开了没有"), ("zh", "我住在朝阳区"),
        ("zh", "明天下午三点送货可以吗"),
        ("en", "i want to check my order"), ("en", "what time do you open"),
        ("en", "my number is four one five"), ("en", "can i talk to someone"),
        ("en", "please send the invoice to my email"), ("en", "i live on main street"),
    ],
)
def test_plain_requests_are_neutral(analyzer: LexiconSentiment, locale: str, text: str) -> None:
    found = analyzer.score(text, locale)
    assert found.label == "neutral", found


@pytest.mark.parametrize(
    ("locale", "text", "label"),
    [
        ("zh", "你们的服务不差", "neutral"),  # a negated complaint is no praise
        ("zh", "东西不算差", "neutral"),
        ("zh", "别生气 我就问问", "neutral"),
        ("zh", "一点都不满意", "negative"),
        ("zh", "我不是很开心", "negative"),  # a negated praise is a complaint
        ("zh", "不太好用", "negative"),
        ("zh", "你们态度一点也不好", "negative"),
        ("zh", "没有不满意的地方", "positive"),  # two negations
        ("en", "it is not bad", "neutral"),
        ("en", "i am not angry i just have a question", "neutral"),
        ("en", "i'm not happy with this", "negative"),
        ("en", "this is not helpful at all", "negative"),
        ("en", "the repair was not good", "negative"),
        ("en", "not bad at all, thanks", "positive"),
    ],
)
def test_negation(analyzer: LexiconSentiment, locale: str, text: str, label: str) -> None:
    assert analyzer.score(text, locale).label == label


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("zh", "真是太好了 又坏了"), ("zh", "呵呵 你们效率真高 等了一个月"),
        ("zh", "谢谢你们啊 让我白跑三趟"), ("zh", "好极了 第三次送错了"),
        ("zh", "你们可真厉害 又把地址搞错了"), ("zh", "太感谢了 浪费我一下午"),
        ("en", "oh great it broke again"), ("en", "thanks a lot for wasting my whole day"),
        ("en", "wonderful the third wrong delivery this month"),
        ("en", "yeah right like that's going to help"),
        ("en", "great job sending the wrong color again"),
        ("en", "perfect, my order is still not here"),
    ],
)
def test_sarcasm_is_negative(analyzer: LexiconSentiment, locale: str, text: str) -> None:
    found = analyzer.score(text, locale)
    assert found.label == "negative", found


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
