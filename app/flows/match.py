"""Small pure helpers of the engine: text matching, digits, yes/no, templates, regions."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from dateutil import parser as date_parser
from phonenumbers import geocoder

from app.events import Entity, IntentResult

_PLACEHOLDER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")
_ZH_DIGITS = {
    "零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
    "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}
_EN_DIGITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "to": "2", "too": "2",
    "three": "3", "four": "4", "for": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9",
}
_YES = {
    "yes", "yeah", "yep", "right", "correct", "sure", "ok", "okay", "是", "是的", "对",
    "对的", "好", "好的", "没错", "可以", "嗯", "네", "예",
}
_NO = {"no", "nope", "wrong", "incorrect", "不", "不是", "不对", "错了", "不用", "아니요", "아니"}


def normalize(text: str) -> str:
    """Lower case without spaces, punctuation or symbols: for phrase matching."""
    kept = (
        ch for ch in unicodedata.normalize("NFKC", text).lower()
        if unicodedata.category(ch)[0] not in "PZSC"
    )
    return "".join(kept)


def phrase_in(phrase: str, text: str) -> bool:
    p = normalize(phrase)
    return bool(p) and p in normalize(text)


def spoken_digits(text: str) -> str:
    """Digits said or typed: "4 5 6 7", "四五六七", "four five six seven" -> "4567"."""
    out: list[str] = []
    for token in re.findall(r"[a-zA-Z]+|\d|\S", unicodedata.normalize("NFKC", text)):
        low = token.lower()
        if token.isdigit():
            out.append(token)
        elif token in _ZH_DIGITS:
            out.append(_ZH_DIGITS[token])
        elif low in _EN_DIGITS:
            out.append(_EN_DIGITS[low])
    return "".join(out)


def entity_value(entities: list[Entity], kind: str) -> str | None:
    for e in entities:
        if e.kind == kind:
            return e.value
    return None


def spaced(value: str) -> str:
    """"4567" -> "4 5 6 7" so TTS reads each digit; a phone number is read as dialled
    nationally ("+8613800138000" -> "1 3 8 0 0 1 3 8 0 0 0")."""
    if value.startswith("+"):
        try:
            number = phonenumbers.parse(value)
        except phonenumbers.NumberParseException:
            return value
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return " ".join(ch for ch in national if ch.isdigit())
    return " ".join(value) if value.isdigit() else value


def yes_no(text: str, intent: IntentResult | None, digits: str = "") -> bool | None:
    """True for yes (affirm, key 1), False for no (deny, key 2), None when unclear."""
    if digits:
        return {"1": True, "2": False}.get(digits.rstrip("#"))
    if intent is not None and intent.intent in ("affirm", "deny"):
        return intent.intent == "affirm"
    norm = normalize(text)
    if norm in {normalize(w) for w in _NO}:
        return False
    if norm in {normalize(w) for w in _YES}:
        return True
    words = set(re.findall(r"[a-z]+", text.lower()))
    if words & _NO:
        return False
    if words & _YES:
        return True
    return None


def render(template: str, slots: dict[str, str]) -> str:
    """Fill ``{slot}`` placeholders; an unknown slot becomes empty (never shown raw)."""
    return _PLACEHOLDER.sub(lambda m: slots.get(m.group(1), ""), template)


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def phone_value(text: str, entities: list[Entity], digits: str, region: str = "CN") -> str | None:
    """A valid phone number in E.164 from an entity, keypad digits or spoken digits."""
    found = entity_value(entities, "phone")
    if found:
        return found
    raw = digits.rstrip("#") or spoken_digits(text)
    if not raw:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def date_value(text: str, entities: list[Entity]) -> str | None:
    found = entity_value(entities, "date")
    if found:
        return found
    try:
        parsed = date_parser.parse(text, fuzzy=False)
    except (ValueError, OverflowError, TypeError):
        return None
    return parsed.date().isoformat()


def caller_region(number: str, locales: list[str]) -> dict[str, str]:
    """Where the caller's number is from, per locale: {"zh": "北京市", "en": "Beijing"}."""
    if not number:
        return {}
    try:
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException:
        return {}
    out: dict[str, str] = {}
    for loc in {*locales, "zh", "en"}:
        name = geocoder.description_for_number(parsed, loc)
        if name:
            out[loc] = name
    return out
