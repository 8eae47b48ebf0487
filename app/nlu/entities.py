"""Entities from transcripts: digit strings, phone numbers, dates/times, money.

``extract_entities(text, locale, now)`` never raises on text. Canonical values (see
``app.events.Entity``): digits ``"4567"``, phone E.164 ``"+8613812345678"``, date
``"2026-11-27"``, time ``"15:00"``, datetime ``"2026-11-27T15:00"``, money ``"12.50 CNY"``.
A digit string that is also a valid phone number is returned as both (``digits`` and
``phone``, same span): the flow asks for the kind it wants.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

import phonenumbers

from app.events import Entity
from app.nlu.dates import Span, en_spans, zh_spans
from app.nlu.numbers import (
    EN_SCALE,
    EN_SMALL,
    DigitRun,
    cn_to_int,
    en_digit_runs,
    en_words_to_int,
    zh_digit_runs,
)
from app.nlu.text import base_locale, has_cjk

MAX_TEXT_CHARS = 2000
_DATETIME_GAP_CHARS = 4
_REGIONS = {"zh": ("CN",), "en": ("US", "CN")}
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")

_ZH_MONEY_RX = re.compile(
    r"(?:(人民币|美元|美金|[¥￥$])\s*)?([0-9.]+|[零〇一二两三四五六七八九十百千万]+)\s*"
    r"(块钱|块|元|圆|美元|美金|刀)?(?:([零一二两三四五六七八九]|[0-9])(毛|角))?"
)
_EN_AMOUNT = r"\d[\d,]*(?:\.\d+)?"
_EN_MONEY_WORDS = "|".join(sorted(set(EN_SMALL) | set(EN_SCALE) | {"and"}, key=len, reverse=True))
_EN_MONEY_RX = re.compile(
    rf"([$¥￥])\s?({_EN_AMOUNT})|\b({_EN_AMOUNT}|(?:(?:{_EN_MONEY_WORDS})\s+)*(?:{_EN_MONEY_WORDS}))"
    rf"\s+(dollars?|bucks|usd|yuan|rmb|kuai|cny)(?:\s+(?:and\s+)?(\d{{1,2}}|[a-z]+(?:\s[a-z]+)?)"
    rf"\s+cents?)?\b"
)
_CURRENCY = {"$": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD", "usd": "USD",
             "美元": "USD", "美金": "USD", "刀": "USD", "¥": "CNY", "￥": "CNY", "yuan": "CNY",
             "rmb": "CNY", "kuai": "CNY", "cny": "CNY", "人民币": "CNY", "块": "CNY",
             "块钱": "CNY", "元": "CNY", "圆": "CNY"}


def extract_entities(text: str, locale: str, now: datetime | None = None) -> list[Entity]:
    """All entities of ``text``, sorted by position."""
    text = text[:MAX_TEXT_CHARS]
    now = now or datetime.now()
    zh = base_locale(locale) == "zh" or has_cjk(text)
    runs = zh_digit_runs(text) if zh else []
    runs += en_digit_runs(text) if not zh or re.search(r"[a-zA-Z]{3}", text) else []
    found: list[Entity] = []
    seen: set[tuple[int, int]] = set()
    for run in runs:
        if (run.start, run.end) in seen:  # mixed-language text: both readers saw these digits
            continue
        seen.add((run.start, run.end))
        found.append(Entity(kind="digits", value=run.digits, text=text[run.start : run.end],
                            start=run.start, end=run.end))
        phone = _phone(run, base_locale(locale))
        if phone is not None:
            found.append(Entity(kind="phone", value=phone, text=text[run.start : run.end],
                                start=run.start, end=run.end))
    found += _written_phones(text, found)
    spans = zh_spans(text, now) if zh else en_spans(text, now)
    found += _date_entities(text, spans)
    money = _zh_money(text) if zh else _en_money(text)
    found = [e for e in found if not any(_overlaps(e, m) for m in money)] + money
    return sorted(found, key=lambda e: (e.start, e.kind))


def _overlaps(a: Entity, b: Entity) -> bool:
    return a.start < b.end and b.start < a.end


def _phone(run: DigitRun, locale: str) -> str | None:
    candidate = ("+" if run.plus else "") + run.digits
    regions = _REGIONS.get(locale, ("CN",))
    if _CN_MOBILE.match(run.digits):
        regions = ("CN",)
    for region in regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def _written_phones(text: str, found: list[Entity]) -> list[Entity]:
    """Formatted numbers the digit runs miss: ``+1 (415) 555-2671``."""
    out: list[Entity] = []
    taken = {(e.start, e.end) for e in found if e.kind == "phone"}
    for match in phonenumbers.PhoneNumberMatcher(text, "CN"):
        if any(match.start < e and s < match.end for s, e in taken):
            continue
        value = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        out.append(Entity(kind="phone", value=value, text=match.raw_string,
                          start=match.start, end=match.end))
    return out


def _date_entities(text: str, spans: list[Span]) -> list[Entity]:
    spans = sorted(spans, key=lambda s: s.start)
    out: list[Entity] = []
    used: set[int] = set()
    for i, span in enumerate(spans):
        if i in used:
            continue
        if isinstance(span.value, date) and not isinstance(span.value, datetime):
            nxt = spans[i + 1] if i + 1 < len(spans) else None
            if nxt is not None and isinstance(nxt.value, time) and (
                0 <= nxt.start - span.end <= _DATETIME_GAP_CHARS
            ):
                used.add(i + 1)
                value = datetime.combine(span.value, nxt.value).strftime("%Y-%m-%dT%H:%M")
                out.append(Entity(kind="datetime", value=value, text=text[span.start : nxt.end],
                                  start=span.start, end=nxt.end))
                continue
            out.append(Entity(kind="date", value=span.value.isoformat(),
                              text=text[span.start : span.end], start=span.start, end=span.end))
        elif isinstance(span.value, time):
            out.append(Entity(kind="time", value=span.value.strftime("%H:%M"),
                              text=text[span.start : span.end], start=span.start, end=span.end))
    return out


def _money(amount: float, currency: str, text: str, start: int, end: int) -> Entity:
    return Entity(kind="money", value=f"{amount:.2f} {currency}", text=text[start:end],
                  start=start, end=end)


def _zh_money(text: str) -> list[Entity]:
    out: list[Entity] = []
    for m in _ZH_MONEY_RX.finditer(text):
        prefix, number, unit = m.group(1), m.group(2), m.group(3)
        if not (prefix or unit):
            continue
        try:
            amount = float(number) if re.fullmatch(r"[0-9.]+", number) else cn_to_int(number)
        except ValueError:
            continue
        if amount is None:
            continue
        if m.group(4):
            amount += (cn_to_int(m.group(4)) or 0) / 10.0
        currency = _CURRENCY.get(unit or "", None) or _CURRENCY.get(prefix or "", "CNY")
        out.append(_money(float(amount), currency, text, m.start(), m.end()))
    return out


def _en_money(text: str) -> list[Entity]:
    out: list[Entity] = []
    low = text.lower()
    for m in _EN_MONEY_RX.finditer(low):
        if m.group(1):
            amount: float | None = float(m.group(2).replace(",", ""))
            currency = _CURRENCY[m.group(1)]
        else:
            amount = _en_amount(m.group(3))
            currency = _CURRENCY[m.group(4)]
            if amount is not None and m.group(5):
                cents = _en_amount(m.group(5))
                amount += (cents or 0) / 100.0
        if amount is not None:
            out.append(_money(amount, currency, text, m.start(), m.end()))
    return out


def _en_amount(said: str) -> float | None:
    said = said.strip()
    if re.fullmatch(_EN_AMOUNT, said):
        return float(said.replace(",", ""))
    words = said.split()
    while words and words[0] in {"and", "a"} and len(words) > 1 and words[1] not in EN_SCALE:
        words = words[1:]
    value = en_words_to_int(words)
    return float(value) if value is not None else None
