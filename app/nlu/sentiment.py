"""Sentiment per caller turn ([-1, 1] + label) and the call-level trend.

One interface, ``SentimentAnalyzer``; two implementations chosen by ``make_analyzer``:

- ``LexiconSentiment`` (default, offline, no model download): vaderSentiment for English;
  snownlp for Chinese blended with a small service-line lexicon (snownlp was trained on
  product reviews and misses phone-call anger such as 投诉 / 受够了).
- ``TransformersSentiment``: a local Hugging Face text-classification model
  (``settings.sentiment_model_path``), score = P(positive) - P(negative).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from app.events import Sentiment
from app.nlu.text import base_locale, has_cjk, normalize_text

NEGATIVE_AT = -0.2
POSITIVE_AT = 0.2
ESCALATION_SLOPE = 0.1
TREND_WINDOW = 5

_ZH_NEGATIVE = {
    "投诉": 0.6, "生气": 0.6, "太差": 0.6, "很差": 0.5, "差劲": 0.6, "垃圾": 0.7,
    "骗": 0.6, "失望": 0.5, "受够": 0.7, "恶劣": 0.6, "坑": 0.4, "气死": 0.8, "烂": 0.4,
    "不满": 0.5, "愤怒": 0.7, "糟糕": 0.5, "破": 0.3, "过分": 0.5, "无语": 0.4,
    "没人管": 0.5, "不负责": 0.5, "曝光": 0.5, "差评": 0.5, "乱收费": 0.5, "倒霉": 0.4,
    "烦": 0.4, "讨厌": 0.5, "坏了": 0.2, "到底": 0.2, "怎么回事": 0.2,
}
_ZH_POSITIVE = {
    "谢谢": 0.4, "感谢": 0.5, "满意": 0.5, "很好": 0.5, "太好了": 0.6, "不错": 0.4,
    "棒": 0.5, "辛苦": 0.3, "好评": 0.5, "麻烦你了": 0.3, "开心": 0.5, "专业": 0.3,
}
_ZH_NEGATORS = ("不", "没", "别")


def label_for(score: float) -> Sentiment:
    score = max(-1.0, min(1.0, score))
    if score <= NEGATIVE_AT:
        return Sentiment(score=round(score, 4), label="negative")
    if score >= POSITIVE_AT:
        return Sentiment(score=round(score, 4), label="positive")
    return Sentiment(score=round(score, 4), label="neutral")


class SentimentAnalyzer(Protocol):
    def score(self, text: str, locale: str) -> Sentiment: ...


class LexiconSentiment:
    """vaderSentiment (English) and snownlp + service lexicon (Chinese); thread-safe."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()
        self._snow_lock = threading.Lock()

    def score(self, text: str, locale: str) -> Sentiment:
        norm = normalize_text(text[:2000])
        if not norm:
            return label_for(0.0)
        if base_locale(locale) == "zh" or has_cjk(norm):
            return label_for(self._zh(norm))
        return label_for(float(self._vader.polarity_scores(text[:2000])["compound"]))

    def _zh(self, norm: str) -> float:
        from snownlp import SnowNLP

        with self._snow_lock:
            p = float(SnowNLP(norm).sentiments)
        lexicon = 0.0
        for words, sign in ((_ZH_NEGATIVE, -1.0), (_ZH_POSITIVE, 1.0)):
            for word, weight in words.items():
                at = norm.find(word)
                if at < 0:
                    continue
                negated = sign > 0 and at > 0 and norm[at - 1] in _ZH_NEGATORS
                lexicon += -weight if negated else sign * weight
        snow = (2.0 * p - 1.0) * 0.4  # a weak prior: snownlp is noisy on short turns
        return max(-1.0, min(1.0, lexicon + snow))


class TransformersSentiment:
    """A local transformers text-classification model; labels mapped by name."""

    def __init__(self, path: Path) -> None:
        from transformers import pipeline

        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no sentiment model at {path} (config.json missing)")
        self._pipe: Any = pipeline("text-classification", model=str(path), top_k=None)
        self._lock = threading.Lock()

    def score(self, text: str, locale: str) -> Sentiment:
        if not normalize_text(text):
            return label_for(0.0)
        with self._lock:
            out: Any = self._pipe(text[:2000], truncation=True)
        rows = out[0] if out and isinstance(out[0], list) else out
        probs = {str(r["label"]).lower(): float(r["score"]) for r in rows}
        return label_for(_positive(probs) - _negative(probs))


def _positive(probs: dict[str, float]) -> float:
    named = sum(p for k, p in probs.items() if k.startswith("pos"))
    if named or len(probs) != 2:
        return named or probs.get("label_2", 0.0)
    return probs.get("label_1", 0.0)


def _negative(probs: dict[str, float]) -> float:
    return sum(p for k, p in probs.items() if k.startswith("neg")) or probs.get("label_0", 0.0)


def make_analyzer(model_path: Path | None) -> SentimentAnalyzer:
    if model_path is not None:
        return TransformersSentiment(model_path)
    return LexiconSentiment()


class SentimentTrend:
    """Call-level trend: least-squares slope of the last turns' scores."""

    def __init__(self, window: int = TREND_WINDOW) -> None:
        self.window = window
        self.scores: list[float] = []

    def add(self, score: float) -> None:
        self.scores.append(max(-1.0, min(1.0, float(score))))

    @property
    def trend(self) -> float:
        ys = self.scores[-self.window :]
        n = len(ys)
        if n < 2:
            return 0.0
        mean_x = (n - 1) / 2.0
        mean_y = sum(ys) / n
        num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(ys))
        den = sum((i - mean_x) ** 2 for i in range(n))
        return round(num / den, 4)

    @property
    def escalating(self) -> bool:
        """The caller is getting angrier: falling scores ending negative."""
        if len(self.scores) < 2:
            return False
        return self.trend <= -ESCALATION_SLOPE and self.scores[-1] <= NEGATIVE_AT
