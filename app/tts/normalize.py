"""Text normalization before synthesis: numbers read the way a hotline reads them.

espeak-ng reads every digit run as one number ("400-800-1234" -> 四百 八百 一千二百三十四),
so the text of each language run is rewritten first, per locale:

- phone numbers ("400-800-1234", "138 0013 8000", "+86 10 6552 9988") digit by digit, in
  their groups; Chinese reads 1 as 幺 in numbers read as digits (四零零 八零零 幺二三四)
- digit runs of 5 or more without separators (order numbers, codes) and spaced single digits
  ("1 2 3 4", what a flow's ``digits`` reading writes) digit by digit
- dates ("2026-11-28", "2026/11/28", "2026年11月28日"): 二零二六年十一月二十八日 /
  "November twenty-eighth, twenty twenty-six"
- times ("15:30"): 十五点三十分 / "three thirty p m"
- money ("¥128.50", "128.5元", "$12.50"), percentages ("15%", "3.5%")
- other numbers ("88", "3.5", "12,345") as quantities

Numbers become words in the run's language (cn2an for Chinese, num2words for English);
other locales are passed through unchanged. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation

import cn2an
from num2words import num2words

ZH_DIGITS = "零幺二三四五六七八九"  # digits read one by one: 1 is 幺 (yāo)
EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")
CODE_MIN_DIGITS = 5  # an unseparated digit run this long is a code, read digit by digit

_D = r"(?<![\d.,])"  # not inside a longer number
_E = r"(?![\d])"
_PATTERNS: list[tuple[str, str]] = [
    ("date", _D + r"(?P<y>\d{4})(?:-|/|年)(?P<m>\d{1,2})(?:-|/|月)(?P<d>\d{1,2})(?P<ri>日|号)?"
     + _E),
    ("clock", _D + r"(?P<ch>1[0-2]|0?[1-9])(?::(?P<cm>[0-5]\d))?\s?(?P<ap>[AaPp])\.?[Mm]\b"
     r"(?:\.(?=\s+[a-z]))?"),
    ("time", _D + r"(?P<h>[01]?\d|2[0-3]):(?P<min>[0-5]\d)" + _E),
    ("money_pre", r"(?P<cur>[¥￥$])\s?(?P<amt>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)"
     + _E),
    ("money_yuan", _D + r"(?P<amt2>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)\s?"
     r"(?P<unit>元|块|yuan\b|dollars?\b)"),
    ("percent", _D + r"(?P<pct>\d+(?:\.\d+)?)\s?[%％]"),
    ("phone", _D + r"(?P<tel>\+?\d{1,4}(?:[- ]\d{2,4}){2,4})" + _E),
    ("spaced", _D + r"(?P<sd>\d(?: \d){2,})" + _E),
    ("ordinal", _D + r"(?P<o>\d+)(?:st|nd|rd|th)\b"),
    ("number", _D + r"(?P<n>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)" + _E),
]
_SCAN = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in _PATTERNS))


def base_locale(locale: str) -> str:
    return locale.replace("_", "-").split("-")[0].lower()


def normalize(text: str, locale: str) -> str:
    """``text`` with numbers, dates, times, money and codes written out for ``locale``."""
    lang = base_locale(locale)
    rules = _RULES.get(lang)
    if rules is None:
        return text
    return _SCAN.sub(lambda m: rules(m), text)


# -- shared -------------------------------------------------------------------------------


def _valid_date(y: str, m: str, d: str) -> date | None:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


def _clock(g: dict[str, str]) -> tuple[int, int]:
    """(hour 0-23, minute) of "10 am", "9:30 p.m."."""
    hour = int(g["ch"]) % 12 + (12 if g["ap"].lower() == "p" else 0)
    return hour, int(g["cm"] or 0)


def _plain(raw: str) -> str:
    """"12.50" -> "12.5", "1,200" -> "1200": how the amount is said."""
    text = f"{_amount(raw):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _amount(raw: str) -> Decimal:
    return Decimal(raw.replace(",", ""))


def _digit_groups(raw: str) -> list[str]:
    """"400-800-1234" -> ["400", "800", "1234"]; "+86 10 6552 9988" -> ["+86", "10", ...]."""
    return [g for g in re.split(r"[- ]", raw) if g]


def _phone_groups(digits: str) -> list[str]:
    """An unseparated phone-like run split the way it is said: 400/800 numbers 3-3-4,
    Chinese mobiles 3-4-4; anything else in one piece."""
    if len(digits) == 10 and digits[:3] in ("400", "800"):
        return [digits[:3], digits[3:6], digits[6:]]
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789":
        return [digits[:3], digits[3:7], digits[7:]]
    return [digits]


# -- Chinese ------------------------------------------------------------------------------


def zh_digits(digits: str) -> str:
    return "".join(ZH_DIGITS[int(ch)] for ch in digits if ch.isdigit())


def zh_number(raw: str) -> str:
    value = raw.replace(",", "")
    return str(cn2an.an2cn(value, "low"))


def _zh_groups(groups: list[str]) -> str:
    out = []
    for g in groups:
        prefix = "加" if g.startswith("+") else ""
        out.append(prefix + zh_digits(g))
    return "，".join(out)


def zh_money(raw: str) -> str:
    amount = _amount(raw).quantize(Decimal("0.01"))
    yuan, cents = divmod(int(amount * 100), 100)
    jiao, fen = divmod(cents, 10)
    text = zh_number(str(yuan)) + "元"
    if jiao:
        text += zh_number(str(jiao)) + "角"
    if fen:
        text += ("零" if not jiao else "") + zh_number(str(fen)) + "分"
    return text


def _zh(m: re.Match[str]) -> str:
    kind = m.lastgroup
    g = m.groupdict()
    if kind == "date":
        day = _valid_date(g["y"], g["m"], g["d"])
        if day is None:
            return _zh_groups(_digit_groups(re.sub(r"[年月/]", "-", m.group(0).rstrip("日号"))))
        return (f"{zh_digits(g['y'])}年{zh_number(str(day.month))}月"
                f"{zh_number(str(day.day))}{g['ri'] or '日'}")
    if kind == "time":
        hour, minute = int(g["h"]), int(g["min"])
        rest = "整" if minute == 0 else (("零" if minute < 10 else "") + zh_number(str(minute))
                                         + "分")
        return f"{zh_number(str(hour))}点{rest}"
    if kind == "clock":
        hour, minute = _clock(g)
        part = "上午" if hour < 12 else "下午"
        rest = "" if minute == 0 else (("零" if minute < 10 else "") + zh_number(str(minute))
                                       + "分")
        return f"{part}{zh_number(str(hour % 12 or 12))}点{rest}"
    if kind == "money_pre":
        if g["cur"] == "$":
            return zh_number(_plain(g["amt"])) + "美元"
        return zh_money(g["amt"])
    if kind == "money_yuan":
        if g["unit"].startswith("dollar"):
            return zh_number(_plain(g["amt2"])) + "美元"
        return zh_money(g["amt2"]) if g["unit"] != "块" else zh_number(_plain(g["amt2"])) + "块"
    if kind == "percent":
        return "百分之" + zh_number(g["pct"])
    if kind == "phone":
        return _zh_groups(_digit_groups(g["tel"]))
    if kind == "spaced":
        return zh_digits(g["sd"])
    if kind == "ordinal":
        return "第" + zh_number(g["o"])
    raw = g["n"]
    if "," not in raw and "." not in raw and len(raw) >= CODE_MIN_DIGITS:
        return "，".join(zh_digits(p) for p in _phone_groups(raw))
    return zh_number(raw)


# -- English ------------------------------------------------------------------------------


def en_digits(digits: str) -> str:
    return " ".join(EN_DIGITS[int(ch)] for ch in digits if ch.isdigit())


def en_number(raw: str) -> str:
    try:
        value = _amount(raw)
    except InvalidOperation:
        return raw
    words = num2words(int(value)) if value == value.to_integral_value() else num2words(value)
    return str(words).replace("-", " ")


def _en_groups(groups: list[str]) -> str:
    return ", ".join(("plus " if g.startswith("+") else "") + en_digits(g) for g in groups)


def en_money(raw: str, currency: str) -> str:
    amount = _amount(raw).quantize(Decimal("0.01"))
    whole, cents = divmod(int(amount * 100), 100)
    if currency == "$":
        text = f"{en_number(str(whole))} {'dollar' if whole == 1 else 'dollars'}"
        if cents:
            text += f" and {en_number(str(cents))} {'cent' if cents == 1 else 'cents'}"
        return text
    text = f"{en_number(str(whole))} yuan"
    if cents:
        text += f" {en_number(str(cents))}"
    return text


def en_time(hour: int, minute: int) -> str:
    suffix = "a.m" if hour < 12 else "p.m"  # no final dot: "a.m." would end a sentence
    h12 = hour % 12 or 12
    if minute == 0:
        return f"{en_number(str(h12))} {suffix}"
    mins = en_number(str(minute)) if minute >= 10 else f"oh {en_number(str(minute))}"
    return f"{en_number(str(h12))} {mins} {suffix}"


def en_date(day: date) -> str:
    ordinal = str(num2words(day.day, to="ordinal")).replace("-", " ")
    year = str(num2words(day.year, to="year")).replace("-", " ")
    return f"{EN_MONTHS[day.month - 1]} {ordinal}, {year}"


def _en(m: re.Match[str]) -> str:
    kind = m.lastgroup
    g = m.groupdict()
    if kind == "date":
        day = _valid_date(g["y"], g["m"], g["d"])
        if day is None:
            return _en_groups(_digit_groups(re.sub(r"[年月/]", "-", m.group(0).rstrip("日号"))))
        return en_date(day)
    if kind == "time":
        return en_time(int(g["h"]), int(g["min"]))
    if kind == "clock":
        return en_time(*_clock(g))
    if kind == "money_pre":
        return en_money(g["amt"], "$" if g["cur"] == "$" else "¥")
    if kind == "money_yuan":
        return en_money(g["amt2"], "$" if g["unit"].startswith("dollar") else "¥")
    if kind == "percent":
        return en_number(g["pct"]) + " percent"
    if kind == "phone":
        return _en_groups(_digit_groups(g["tel"]))
    if kind == "spaced":
        return en_digits(g["sd"])
    if kind == "ordinal":
        return str(num2words(int(g["o"]), to="ordinal")).replace("-", " ")
    raw = g["n"]
    if "," not in raw and "." not in raw and len(raw) >= CODE_MIN_DIGITS:
        return ", ".join(en_digits(p) for p in _phone_groups(raw))
    return en_number(raw)


_RULES: dict[str, Callable[[re.Match[str]], str]] = {"zh": _zh, "cmn": _zh, "en": _en}
