"""Sentiment per caller turn ([-1, 1] + label) and the call-level trend.

One interface, ``SentimentAnalyzer``; two implementations chosen by ``make_analyzer``:

- ``LexiconSentiment`` (default, offline, no model download): vaderSentiment for English
  (politeness such as "please" is not praise, and a negated complaint word, "not angry",
  is no praise either: both are taken out before scoring);
  a service-line lexicon for Chinese with negation (a negator up to 3 characters before a
  word flips it: 不满意, 不是很开心; a negated complaint word is neutral: 不差), and
  snownlp as a weak prior that alone never leaves "neutral" (it was trained on product
  reviews and is noisy on short turns such as 请问你们几点开门). Both languages read
  sarcasm the way callers use it: praise said together with a trouble cue (太好了 又坏了,
  "oh great it broke again") counts as negative.
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
    "烦死": 0.6, "烦人": 0.5, "好烦": 0.4, "真烦": 0.4, "讨厌": 0.5, "不好": 0.4,
    "坏了": 0.2, "到底": 0.2, "怎么回事": 0.2, "差": 0.3,
    "难用": 0.5, "麻烦死": 0.6, "离谱": 0.5, "浪费": 0.4, "欺负": 0.5, "敷衍": 0.5,
}
_ZH_POSITIVE = {
    "谢谢": 0.4, "感谢": 0.5, "满意": 0.5, "很好": 0.5, "太好了": 0.6, "不错": 0.4,
    "棒": 0.5, "辛苦": 0.3, "好评": 0.5, "麻烦你了": 0.3, "开心": 0.5, "专业": 0.3,
    "好用": 0.4, "高兴": 0.5, "好极了": 0.6, "真高": 0.3, "真快": 0.3, "厉害": 0.4,
    "给力": 0.5, "靠谱": 0.4, "放心": 0.3, "完美": 0.5,
}
_ZH_NEGATORS = ("不", "没", "别", "无")
NEGATION_WINDOW = 3  # characters (zh) / words (en) before a word where a negator acts
_EN_NEGATORS = {"not", "never", "no", "t", "cannot", "without", "nothing"}
_EN_POLITE = {"please", "pls", "kindly"}
SNOW_WEIGHT = 0.15  # < POSITIVE_AT: snownlp alone never makes a turn non-neutral
# trouble said next to praise makes the praise sarcastic
_ZH_TROUBLE = ("呵呵", "白跑", "又坏", "又错", "又是", "又没", "送错", "错了", "坏了",
               "等了", "第三次", "好几次", "还没", "都没", "浪费", "耽误")
_EN_TROUBLE = ("again", "wasting", "wasted", "waste of", "wrong", "broke", "broken",
               "yeah right", "third time", "still not", "still haven't", "never arrived",
               "like that's going to", "like that will", "sure you will", "as usual")


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
        return label_for(self._en(norm, text[:2000]))

    def _en(self, norm: str, text: str) -> float:
        words = norm.split()
        lexicon: dict[str, float] = self._vader.lexicon
        drop: set[int] = {i for i, w in enumerate(words) if w in _EN_POLITE}
        for i, w in enumerate(words):
            if w in _EN_NEGATORS:
                for j in range(i + 1, min(i + 1 + NEGATION_WINDOW, len(words))):
                    if lexicon.get(words[j], 0.0) < 0:
                        drop |= {i, j}
                        break
        if drop:
            text = " ".join(w for i, w in enumerate(words) if i not in drop)
        score = float(self._vader.polarity_scores(text)["compound"])
        trouble = any(f" {cue} " in f" {norm} " for cue in _EN_TROUBLE)
        if trouble and score > NEGATIVE_AT:  # "great, it broke again": sarcasm
            return min(NEGATIVE_AT - 0.1, -abs(score))
        return score

    def _zh(self, norm: str) -> float:
        from snownlp import SnowNLP

        with self._snow_lock:
            p = float(SnowNLP(norm).sentiments)
        praise = complaint = 0.0
        for words, sign in ((_ZH_NEGATIVE, -1.0), (_ZH_POSITIVE, 1.0)):
            for word, weight in words.items():
                at = norm.find(word)
                if at < 0 or _covered(norm, word, at, words):
                    continue
                before = norm[max(0, at - NEGATION_WINDOW) : at]
                negators = sum(before.count(n) for n in _ZH_NEGATORS)  # 没有不满意: twice
                negated = negators % 2 == 1
                if sign > 0:
                    praise += 0.0 if negated else weight
                    complaint += weight if negated else 0.0
                elif not negated:  # a negated complaint word (不差) is no complaint
                    complaint += weight
        if praise and any(cue in norm for cue in _ZH_TROUBLE):  # 太好了 又坏了: sarcasm
            complaint, praise = complaint + praise, 0.0
        snow = (2.0 * p - 1.0) * SNOW_WEIGHT
        return max(-1.0, min(1.0, praise - complaint + snow))


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


def _covered(norm: str, word: str, at: int, words: dict[str, float]) -> bool:
    """``word`` found only inside a longer lexicon word of the same list (差 in 太差)."""
    for other in words:
        if len(other) > len(word) and word in other:
            start = norm.find(other)
            if start >= 0 and start <= at < start + len(other):
                return True
    return False
