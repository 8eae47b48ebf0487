"""Dates and times as callers say them, resolved against an injected ``now``.

Chinese: 今天/明天/后天/大后天, (这|下|下下)?(周|星期|礼拜)一..日, 3月5号 / 三月五日,
下个月五号, (上午|下午|晚上..)?三点(半|一刻|十五分)?, 15:30.
English: today/tomorrow/tonight/the day after tomorrow, (next|this|on)? monday, march 5th /
5 march / the fifth of march, at 3 / 3 pm / 3:30 / three thirty / noon.

A date and a time said together ("明天下午三点", "tomorrow at 3") give one ``datetime``.
A bare hour without am/pm is read in business hours: 1-7 -> afternoon, 8-12 -> morning/noon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from app.nlu.numbers import EN_ORDINAL, EN_SMALL, cn_to_int, en_words_to_int


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    value: date | time


_ZH_NUM = r"[0-9零〇一二两三四五六七八九十]+"
_ZH_DAY = {"今天": 0, "今日": 0, "今晚": 0, "明天": 1, "明日": 1, "明早": 1, "明晚": 1,
           "后天": 2, "大后天": 3, "昨天": -1, "前天": -2}
_ZH_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
               "末": 5, "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_ZH_DAY_RX = re.compile("|".join(sorted(_ZH_DAY, key=len, reverse=True)))
_ZH_WEEK_RX = re.compile(
    r"(这个?|本|下下个?|下个?|上个?)?(?:周|星期|礼拜)([一二三四五六日天末1-7])"
)
_ZH_MONTH_DAY_RX = re.compile(rf"(下个月|这个月|本月)?(?:({_ZH_NUM})月)?({_ZH_NUM})[日号]")
_ZH_TIME_RX = re.compile(
    rf"(凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里)?({_ZH_NUM})[点:：]"
    rf"(半|一刻|三刻|({_ZH_NUM})分?)?"
)
_PM_WORDS = {"下午", "傍晚", "晚上", "夜里"}

_EN_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_EN_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
              "september", "october", "november", "december"]
_EN_MONTH_RX = "|".join(_EN_MONTHS + [m[:3] for m in _EN_MONTHS if m != "may"])
_EN_DAYNUM = r"\d{1,2}(?:st|nd|rd|th)?|" + "|".join(EN_ORDINAL)
_EN_REL_RX = re.compile(r"\b(the day after tomorrow|today|tonight|tomorrow|yesterday)\b")
_EN_WEEK_RX = re.compile(rf"\b(next|this|on|coming)?\s*({'|'.join(_EN_WEEKDAYS)})\b")
_EN_MD_RX = re.compile(
    rf"\b(?:({_EN_MONTH_RX})\s+(?:the\s+)?({_EN_DAYNUM})|(?:the\s+)?({_EN_DAYNUM})\s+(?:of\s+)?"
    rf"({_EN_MONTH_RX}))\b"
)
_EN_HOUR_WORDS = "|".join(sorted((k for k, v in EN_SMALL.items() if 1 <= v <= 12 and k != "a"),
                                 key=len, reverse=True))
_EN_TIME_RX = re.compile(
    rf"\b(?:(?:at|around|by)\s+)?(\d{{1,2}})(?::(\d{{2}}))?\s*(a\.?m\.?|p\.?m\.?)?(?=\W|$)"
    rf"|\b(?:(?:at|around|by)\s+)?({_EN_HOUR_WORDS})(?:\s+(thirty|fifteen|forty five|o'?clock))?"
    rf"\s*(a\.?m\.?|p\.?m\.?)?\b|\b(noon|midday|midnight)\b"
)


def _business_hour(hour: int, meridiem: str | None) -> int:
    if meridiem is not None:
        if meridiem.startswith("p") and hour < 12:
            return hour + 12
        if meridiem.startswith("a") and hour == 12:
            return 0
        return hour
    return hour + 12 if 1 <= hour <= 7 else hour


def _next_weekday(today: date, weekday: int, weeks_ahead: int) -> date:
    if weeks_ahead == 0:
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    monday = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks_ahead)
    return monday + timedelta(days=weekday)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_day(now: date, month: int | None, day: int, month_offset: int) -> date | None:
    if month is None:
        m = now.month + month_offset
        year, month = now.year + (m - 1) // 12, (m - 1) % 12 + 1
        found = _safe_date(year, month, day)
        if found is not None and found < now and month_offset == 0:
            m += 1
            found = _safe_date(now.year + (m - 1) // 12, (m - 1) % 12 + 1, day)
        return found
    found = _safe_date(now.year, month, day)
    if found is not None and found < now - timedelta(days=30):
        found = _safe_date(now.year + 1, month, day)
    return found


def zh_spans(text: str, now: datetime) -> list[Span]:
    today = now.date()
    spans: list[Span] = []
    for m in _ZH_DAY_RX.finditer(text):
        spans.append(Span(m.start(), m.end(), today + timedelta(days=_ZH_DAY[m.group()])))
    for m in _ZH_WEEK_RX.finditer(text):
        prefix = m.group(1) or ""
        weeks = 2 if prefix.startswith("下下") else 1 if prefix.startswith("下") else (
            -1 if prefix.startswith("上") else 0)
        day = _next_weekday(today, _ZH_WEEKDAY[m.group(2)], weeks)
        if prefix.startswith(("这", "本")):
            day = today - timedelta(days=today.weekday()) + timedelta(days=_ZH_WEEKDAY[m.group(2)])
        spans.append(Span(m.start(), m.end(), day))
    for m in _ZH_MONTH_DAY_RX.finditer(text):
        day_n = cn_to_int(m.group(3))
        month_n = cn_to_int(m.group(2)) if m.group(2) else None
        if day_n is None or not 1 <= day_n <= 31:
            continue
        if month_n is not None and not 1 <= month_n <= 12:
            continue
        found = _month_day(today, month_n, day_n, 1 if m.group(1) == "下个月" else 0)
        if found is not None:
            spans.append(Span(m.start(), m.end(), found))
    for m in _ZH_TIME_RX.finditer(text):
        hour = cn_to_int(m.group(2))
        if hour is None or hour > 24:
            continue
        minute = {"半": 30, "一刻": 15, "三刻": 45}.get(m.group(3) or "", 0)
        if m.group(4):
            minute = cn_to_int(m.group(4)) or 0
        period = m.group(1)
        if period in _PM_WORDS and hour < 12:
            hour += 12
        elif period is None and ":" not in m.group() and "：" not in m.group():
            hour = _business_hour(hour, None)
        if hour < 24 and minute < 60:
            spans.append(Span(m.start(), m.end(), time(hour, minute)))
    return spans


def en_spans(text: str, now: datetime) -> list[Span]:
    low = text.lower()
    today = now.date()
    spans: list[Span] = []
    rel = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1,
           "the day after tomorrow": 2}
    for m in _EN_REL_RX.finditer(low):
        spans.append(Span(m.start(), m.end(), today + timedelta(days=rel[m.group(1)])))
    for m in _EN_WEEK_RX.finditer(low):
        weekday = _EN_WEEKDAYS.index(m.group(2))
        weeks = 1 if m.group(1) == "next" else 0
        start = m.start(1) if m.group(1) else m.start(2)
        spans.append(Span(start, m.end(), _next_weekday(today, weekday, weeks)))
    for m in _EN_MD_RX.finditer(low):
        month_word = m.group(1) or m.group(4)
        day_word = m.group(2) or m.group(3)
        month = next(i + 1 for i, name in enumerate(_EN_MONTHS) if name.startswith(month_word))
        day = EN_ORDINAL.get(day_word) or int(re.sub(r"\D", "", day_word))
        found = _month_day(today, month, day, 0) if 1 <= day <= 31 else None
        if found is not None:
            spans.append(Span(m.start(), m.end(), found))
    spans.extend(_en_times(low, spans))
    return spans


def _en_times(low: str, dates: list[Span]) -> list[Span]:
    out: list[Span] = []
    for m in _EN_TIME_RX.finditer(low):
        if m.group(7):
            out.append(Span(m.start(), m.end(), time(0 if m.group(7) == "midnight" else 12, 0)))
            continue
        said = m.group()
        if m.group(1):
            hour, minute, meridiem = int(m.group(1)), int(m.group(2) or 0), m.group(3)
            has_cue = bool(m.group(2) or meridiem or re.match(r"(at|around|by)\s", said))
        else:
            hour = en_words_to_int([m.group(4)]) or 0
            minute = {"thirty": 30, "fifteen": 15, "forty five": 45}.get(m.group(5) or "", 0)
            meridiem = m.group(6)
            has_cue = bool(m.group(5) or meridiem or re.match(r"(at|around|by)\s", said))
        if not has_cue or any(d.start <= m.start() < d.end for d in dates):
            continue
        if not (1 <= hour <= 23 and minute < 60):
            continue
        hour = _business_hour(hour, meridiem.replace(".", "") if meridiem else None)
        out.append(Span(m.start(), m.end(), time(hour % 24, minute)))
    return out
