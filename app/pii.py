"""Personal data in text: find and mask card numbers, Chinese ID numbers, bank accounts, phones.

A *digit run* is a sequence of digits as they appear in typed, spoken or transcribed text:
ASCII or full-width digits, Chinese numerals (六二二二, 幺 for 1) or English digit words
("six two two two"), separated by at most two of space, ``-``, ``,``, ``.`` or ``、``. Each
run is classified by its digits:

- ``cn_id``: 18 characters (17 digits and a digit or X) whose ISO 7064 MOD 11-2 check holds;
- ``card``: 13 to 19 digits whose Luhn check holds;
- ``phone``: a personal number ``phonenumbers`` calls valid — with a country code (``+``,
  ``00``, ``86``), a Chinese mobile (11 digits, 1[3-9]...) or a landline with its trunk 0;
  toll-free, shared-cost and other business numbers (a 400 hotline) are not personal data;
- ``bank_account``: any other run of 13 to 30 digits (Chinese account numbers carry no check).

Shorter runs (menu keys, a 4-12 digit order number, times, amounts) are left alone. Masking
replaces every digit of a run but the last four with ``*``. ``Redactor`` adds a call's
*secrets* (values collected by a ``sensitive`` flow node): a run containing one is masked
whole, whatever its length. ``mask_json`` walks JSON-like values. The log processor in
``app.log`` masks every kind plus every live call's secrets (``register_secret``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import phonenumbers
from phonenumbers import PhoneNumberType

PiiKind = Literal["card", "cn_id", "bank_account", "phone"]
PII_KINDS: tuple[PiiKind, ...] = ("card", "cn_id", "bank_account", "phone")
SENSITIVE = "[sensitive]"  # what a sensitive node's input becomes in events and logs
MASKED_KEY = "•"  # a key pressed during a sensitive listen, as recorded
KEEP_LAST = 4
MIN_SECRET_CHARS = 3
# keys whose values are identifiers or timestamps, never personal data
SAFE_KEYS = frozenset({
    "type", "call_id", "seq", "at", "id", "hotline_number", "flow_id", "flow", "node",
    "decision", "kind", "file", "started_at", "ended_at", "answered_at", "created_at",
    "finalized_at", "timestamp", "level", "locale", "outcome", "end_reason", "channel",
})

_ZH = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
       "六": 6, "七": 7, "八": 8, "九": 9}
_WORDS = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
          "six": 6, "seven": 7, "eight": 8, "nine": 9}
_TOKEN = re.compile(
    r"[0-9\uff10-\uff19" + "".join(_ZH) + r"]|(?<![A-Za-z])(?:"
    + "|".join(_WORDS) + r")(?![A-Za-z])|(?<=[0-9])[Xx](?![A-Za-z0-9])",
    re.IGNORECASE,
)
_GAP = re.compile(r"[ \t\u3000\-,.、]{0,2}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PERSONAL_TYPES = {
    PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.VOIP, PhoneNumberType.PAGER,
}


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    value: str  # "0".."9" or "X"


@dataclass(frozen=True, slots=True)
class Found:
    kind: PiiKind | Literal["secret"]
    start: int  # character offsets of the run in the text
    end: int
    tokens: tuple[tuple[int, int], ...]  # each digit's span


def _value(text: str) -> str:
    if text in _ZH:
        return str(_ZH[text])
    low = text.lower()
    if low in _WORDS:
        return str(_WORDS[low])
    if low == "x":
        return "X"
    if "\uff10" <= text <= "\uff19":
        return str(ord(text) - 0xFF10)
    return text


def _runs(text: str) -> list[list[_Token]]:
    runs: list[list[_Token]] = []
    current: list[_Token] = []
    for m in _TOKEN.finditer(text):
        token = _Token(m.start(), m.end(), _value(m.group()))
        if current:
            gap = _GAP.fullmatch(text, current[-1].end, m.start())
            if gap is None or token.value == "X" and len(current) != 17:
                runs.append(current)
                current = []
        if token.value == "X" and not current:
            continue
        current.append(token)
    if current:
        runs.append(current)
    return runs


def luhn_ok(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def cn_id_ok(value: str) -> bool:
    """An 18-character resident ID number whose check character (ISO 7064 MOD 11-2) holds."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def _personal_phone(digits: str, plus: bool) -> bool:
    if plus:
        candidate = "+" + digits
    elif digits.startswith("00"):
        candidate = "+" + digits[2:]
    elif digits.startswith("86") and len(digits) == 13:
        candidate = "+" + digits
    elif len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789":
        candidate = "+86" + digits
    elif digits.startswith("0") and 10 <= len(digits) <= 12:
        candidate = "+86" + digits[1:]
    else:
        return False
    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number) and \
        phonenumbers.number_type(number) in _PERSONAL_TYPES


def classify(digits: str, plus: bool = False) -> PiiKind | None:
    """What kind of personal data a run's digits are, if any."""
    if len(digits) == 18 and cn_id_ok(digits):
        return "cn_id"
    if not digits.isdigit():
        return None
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "card"
    if 7 <= len(digits) <= 15 and _personal_phone(digits, plus):
        return "phone"
    if 13 <= len(digits) <= 30:
        return "bank_account"
    return None


def find(text: str, kinds: Iterable[str] = PII_KINDS,
         secrets: Iterable[str] = ()) -> list[Found]:
    """The runs of ``text`` holding personal data of ``kinds`` or one of ``secrets``."""
    wanted = set(kinds)
    digit_secrets = [s for s in secrets if s.isdigit() and len(s) >= MIN_SECRET_CHARS]
    found: list[Found] = []
    for run in _runs(text):
        digits = "".join(t.value for t in run)
        spans = tuple((t.start, t.end) for t in run)
        if any(s in digits for s in digit_secrets):
            found.append(Found("secret", run[0].start, run[-1].end, spans))
            continue
        if len(run) < 7:
            continue
        plus = run[0].start > 0 and text[run[0].start - 1] == "+"
        kind = classify(digits, plus)
        if kind is not None and kind in wanted:
            found.append(Found(kind, run[0].start, run[-1].end, spans))
    return found


def mask_text(text: str, kinds: Iterable[str] = PII_KINDS, secrets: Iterable[str] = ()) -> str:
    """``text`` with each run of personal data masked (secrets wholly, others but the last
    four digits); other text secrets (not digits) replaced by ``[sensitive]``."""
    secrets = tuple(secrets)
    out = text
    for secret in secrets:
        if not secret.isdigit() and len(secret) >= MIN_SECRET_CHARS and secret in out:
            out = out.replace(secret, SENSITIVE)
    found = find(out, kinds, secrets)
    if not found:
        return out
    parts: list[str] = []
    pos = 0
    for item in found:
        hidden = item.tokens if item.kind == "secret" else item.tokens[:-KEEP_LAST]
        for start, end in hidden:
            parts.append(out[pos:start])
            parts.append("*")
            pos = end
    parts.append(out[pos:])
    return "".join(parts)


def mask_json(value: Any, kinds: Iterable[str] = PII_KINDS, secrets: Iterable[str] = (),
              safe_keys: frozenset[str] = SAFE_KEYS) -> Any:
    """A copy of a JSON-like value with every string masked (keys in ``safe_keys`` kept)."""
    kinds, secrets = tuple(kinds), tuple(secrets)
    if not kinds and not secrets:
        return value
    return _walk(value, kinds, secrets, safe_keys)


def _walk(value: Any, kinds: tuple[str, ...], secrets: tuple[str, ...],
          safe_keys: frozenset[str]) -> Any:
    if isinstance(value, str):
        return mask_text(value, kinds, secrets)
    if isinstance(value, dict):
        return {k: v if k in safe_keys else _walk(v, kinds, secrets, safe_keys)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, kinds, secrets, safe_keys) for v in value]
    return value


@dataclass
class Redactor:
    """One call's redaction: the kinds never kept (settings ``pii_redact_at_rest``) and the
    values its sensitive nodes collected."""

    kinds: tuple[str, ...] = ("card", "cn_id", "bank_account")
    secrets: set[str] = field(default_factory=set)
    owner: str = ""  # the call id, for the log processor's registry

    def add_secret(self, value: str) -> None:
        value = value.strip()
        if len(value) >= MIN_SECRET_CHARS and value not in self.secrets:
            self.secrets.add(value)
            if self.owner:
                register_secret(self.owner, value)

    def json(self, value: Any) -> Any:
        return mask_json(value, self.kinds, self.secrets)

    def close(self) -> None:
        if self.owner:
            release_secrets(self.owner)


# -- secrets of live calls, for the log processor ------------------------------------------
_LIVE_SECRETS: dict[str, set[str]] = {}
_LIVE_LOCK = threading.Lock()


def register_secret(owner: str, value: str) -> None:
    with _LIVE_LOCK:
        _LIVE_SECRETS.setdefault(owner, set()).add(value)


def release_secrets(owner: str) -> None:
    with _LIVE_LOCK:
        _LIVE_SECRETS.pop(owner, None)


def live_secrets() -> tuple[str, ...]:
    with _LIVE_LOCK:
        return tuple(s for values in _LIVE_SECRETS.values() for s in values)


def mask_log_event(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every value masked (all kinds, live calls' secrets)."""
    secrets = live_secrets()
    return {k: v if k in ("timestamp", "level") else _walk(v, PII_KINDS, secrets, SAFE_KEYS)
            for k, v in event_dict.items()}
