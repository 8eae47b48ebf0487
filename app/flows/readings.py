"""How a slot's value is read aloud in a prompt: digit by digit, as a date, money, a number.

A prompt's ``{slot}`` is filled with the value written the way the speech normalizer
(``app.tts.normalize``) reads it unambiguously: ``digits`` spaced ("4 5 6 7", read 四五六七 /
"four five six seven", never 四千五百六十七), ``date`` in ISO form, ``money`` with the
locale's currency, ``number`` with thousands separators (a quantity, not a code). A slot's
reading comes from the flow's ``readings`` map, else its collect node (``reading``, or the
default for its type: digits and phone -> digits, date -> date). Pure functions.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from app.flows.match import date_value, spaced
from app.flows.schema import CollectNode, Flow, Reading

DEFAULT_BY_TYPE: dict[str, Reading] = {"digits": "digits", "phone": "digits", "date": "date"}
BUILTIN_READINGS: dict[str, Reading] = {"caller_number": "digits", "callback_number": "digits"}
CURRENCY_SIGNS = "¥￥$€£元"


def slot_readings(flow: Flow) -> dict[str, Reading]:
    """slot -> reading for every slot of ``flow`` that has one."""
    out: dict[str, Reading] = dict(BUILTIN_READINGS)
    for node in flow.nodes.values():
        if isinstance(node, CollectNode):
            reading = node.reading or DEFAULT_BY_TYPE.get(node.type)
            if reading is not None:
                out[node.slot] = reading
    out.update(flow.readings)
    return out


def _decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value.replace(",", "").strip())
    except InvalidOperation:
        return None


def read_as(value: str, reading: Reading | None, locale: str) -> str:
    """``value`` written so the speech normalizer reads it as ``reading`` in ``locale``."""
    if not value or reading in (None, "text"):
        return value
    if reading == "digits":
        return spaced(value) if value.startswith("+") or value.isdigit() else value
    if reading == "date":
        return date_value(value, []) or value
    amount = _decimal(value)
    if amount is None or any(sign in value for sign in CURRENCY_SIGNS):
        return value
    plain = f"{amount:,f}"
    if reading == "number":
        return plain
    lang = locale.replace("_", "-").split("-")[0].lower()
    if lang == "zh":
        return f"{plain}元"
    if lang == "en":
        return f"${plain}"
    return plain
