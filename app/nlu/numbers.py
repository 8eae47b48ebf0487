"""Numbers as callers say them: spoken digit strings and quantities, Chinese and English."""

from __future__ import annotations

import re
from dataclasses import dataclass

CN_DIGIT = {
    "零": 0, "〇": 0, "洞": 0, "幺": 1, "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2,
    "三": 3, "叁": 3, "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7,
    "柒": 7, "拐": 7, "八": 8, "捌": 8, "九": 9, "玖": 9, "勾": 9,
}
CN_UNIT = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
CN_BIG = {"万": 10_000, "萬": 10_000, "亿": 100_000_000}
CN_NUMBER_CHARS = "".join(CN_DIGIT) + "".join(CN_UNIT) + "".join(CN_BIG)

EN_DIGIT = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}
EN_SMALL = {
    **{k: v for k, v in EN_DIGIT.items() if k not in {"oh", "o"}},
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90, "a": 1,
}
EN_SCALE = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
EN_ORDINAL = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}
MIN_DIGITS = 3


def cn_to_int(text: str) -> int | None:
    """``三百五十`` -> 350, ``一万二`` -> 12000, ``两千`` -> 2000, ``十五`` -> 15, ``12`` -> 12.

    A string of bare digits (``一二三``) reads digit by digit. ``None`` if not a number.
    """
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if all(ch in CN_DIGIT or ch.isdigit() for ch in text):
        return int("".join(str(CN_DIGIT.get(ch, ch)) for ch in text))
    total = section = number = 0
    last_unit = 1
    zero_seen = False
    for ch in text:
        if ch in CN_DIGIT or ch.isdigit():
            number = number * 10 + int(CN_DIGIT.get(ch, ch)) if number else int(
                CN_DIGIT.get(ch, ch)
            )
            zero_seen = zero_seen or CN_DIGIT.get(ch) == 0
        elif ch in CN_UNIT:
            unit = CN_UNIT[ch]
            section += (number or 1) * unit
            number, last_unit, zero_seen = 0, unit, False
        elif ch in CN_BIG:
            total = (total + section + number) * CN_BIG[ch]
            section = number = 0
            last_unit, zero_seen = CN_BIG[ch], False
        else:
            return None
    if number and last_unit >= 100 and not zero_seen and number < 10:
        number *= last_unit // 10  # colloquial 三百五 = 350, 一万二 = 12000
    return total + section + number


def en_words_to_int(words: list[str]) -> int | None:
    """``["two", "hundred", "fifty"]`` -> 250; ``None`` if any word is not a number."""
    if not words:
        return None
    total = current = 0
    for w in words:
        if w == "and":
            continue
        if w.isdigit():
            current += int(w)
        elif w in EN_SMALL:
            current += EN_SMALL[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w in EN_SCALE:
            total += (current or 1) * EN_SCALE[w]
            current = 0
        else:
            return None
    return total + current


@dataclass(frozen=True)
class DigitRun:
    digits: str
    start: int
    end: int
    plus: bool = False  # said "+" / "plus" / "加" before it


_ZH_DIGIT_CLASS = "[0-9零〇洞幺一二两三四五六七八九拐勾]"
_ZH_RUN = re.compile(rf"{_ZH_DIGIT_CLASS}(?:[\s\-]*{_ZH_DIGIT_CLASS})+")
_EN_TOKEN = re.compile(r"[a-z]+|\d+|\+", re.IGNORECASE)


def zh_digit_runs(text: str) -> list[DigitRun]:
    """Runs of digits said one by one (``幺三八 一二三四``, ``四五6 7``), >= 3 digits.

    Chinese quantities (``三百``, ``十五``) and numbers next to a unit character are not
    digit strings and are left to money/date parsing.
    """
    runs: list[DigitRun] = []
    for m in _ZH_RUN.finditer(text):
        chars = [c for c in m.group() if c not in " \t-"]
        after = text[m.end() : m.end() + 1]
        before = text[m.start() - 1 : m.start()] if m.start() else ""
        if len(chars) < MIN_DIGITS or (after and after in CN_NUMBER_CHARS + "点月号日元块"):
            continue
        if before and before in "".join(CN_UNIT) + "".join(CN_BIG):
            continue
        digits = "".join(str(CN_DIGIT.get(c, c)) for c in chars)
        plus = text[: m.start()].rstrip().endswith(("+", "加"))
        runs.append(DigitRun(digits, m.start(), m.end(), plus))
    return runs


def en_digit_runs(text: str) -> list[DigitRun]:
    """Runs of spoken or written digits: ``four five six seven``, ``double five``, ``oh``."""
    runs: list[DigitRun] = []
    tokens = list(_EN_TOKEN.finditer(text))
    i = 0
    while i < len(tokens):
        digits, start, end, j = "", -1, -1, i
        repeat = 1
        while j < len(tokens):
            word = tokens[j].group().lower()
            if j > i and text[tokens[j - 1].end() : tokens[j].start()].strip(" \t-"):
                break
            if word in {"double", "triple"} and j + 1 < len(tokens) and tokens[
                j + 1
            ].group().lower() in EN_DIGIT:
                repeat = 2 if word == "double" else 3
            elif word in EN_DIGIT and not (word in {"oh", "o"} and not digits):
                digits += str(EN_DIGIT[word]) * repeat
                repeat = 1
            elif word.isdigit():
                digits += word
            else:
                break
            start = tokens[j].start() if start < 0 else start
            end = tokens[j].end()
            j += 1
        if len(digits) >= MIN_DIGITS:
            prev = tokens[i - 1].group().lower() if i > 0 else ""
            runs.append(DigitRun(digits, start, end, prev in {"+", "plus"}))
        i = max(j, i + 1)
    return runs


# -- number masking for intent features (text scheme 2) ----------------------------------------
_ZH_NUMERAL = "零〇一二两三四五六七八九十百千万亿"
_ZH_QUANTITY = re.compile(rf"[零〇一二两三四五六七八九十][{_ZH_NUMERAL}]+")
_ARABIC = re.compile(r"\d+(?:[.,]\d+)*")
_EN_WORD = re.compile(r"[a-z]+|\d+(?:[.,]\d+)*")
_EN_LONE_NOT_NUMBER = {"a", "one", "oh", "o", "and"}


def mask_numbers(norm: str, cjk: bool) -> str:
    """Every number of a normalised text as ``#``, spoken or written, either language.

    Chinese: arabic digits, digit strings said one by one (3+), and numerals with a unit
    character (``三百五``, ``十二``); a lone ``一`` (``一下``, ``一直``) is a word, not a
    number. English: digit tokens and number-word sequences (``two hundred and five``);
    a lone ``a`` / ``one`` / ``oh`` is a word.
    """
    if cjk:
        runs = [(r.start, r.end) for r in zh_digit_runs(norm)]
        runs += [(m.start(), m.end()) for m in _ZH_QUANTITY.finditer(norm)
                 if any(c in CN_UNIT or c in CN_BIG for c in m.group())]
        runs += [(m.start(), m.end()) for m in _ARABIC.finditer(norm)]
        spans = _merge(runs)
    else:
        spans = _merge([(r.start, r.end) for r in en_digit_runs(norm)] + _en_number_spans(norm))
    for start, end in reversed(spans):
        norm = norm[:start] + " # " + norm[end:]
    return re.sub(r"\s+", " ", norm).strip()


def _en_number_spans(norm: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    words = list(_EN_WORD.finditer(norm))
    i = 0
    while i < len(words):
        j = i
        while j < len(words) and _en_numberish(words[j].group()):
            j += 1
        group = [w.group() for w in words[i:j]]
        while group and group[-1] in _EN_LONE_NOT_NUMBER:  # "twenty and" / "five a"
            group.pop()
            j -= 1
        while group and group[0] in {"and", "a"} and len(group) > 1:
            group.pop(0)
            i += 1
        real = [g for g in group if g not in _EN_LONE_NOT_NUMBER]
        if real or len(group) >= 2:
            spans.append((words[i].start(), words[j - 1].end()))
        i = max(j, i + 1)
    return spans


def _en_numberish(word: str) -> bool:
    return (word[0].isdigit() or word in EN_SMALL or word in EN_SCALE or word == "and"
            or word in EN_DIGIT)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
