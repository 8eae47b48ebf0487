"""Every prompt a caller can hear: each flow's prompts (flow, node, locale, text) and the
built-in system texts (``app.flows.defaults``), with the key of their recording slot
(``app.tts.recordings``) and the sample values a preview fills their ``{slot}``s with.
Pure functions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from app.flows.defaults import DEFAULT_TEXTS
from app.flows.loader import walk_prompts
from app.flows.match import placeholders, render
from app.flows.readings import read_as, slot_readings
from app.flows.schema import Flow, Reading
from app.tts.recordings import prompt_key

SYSTEM = ""  # the flow of a built-in text
SAMPLE_BY_NAME: dict[str, str] = {
    "caller_number": "13800138000", "callback_number": "13800138000",
    "number": "13800138000", "value_spoken": "1 2 3 4", "n": "3", "ahead": "2",
    "minutes": "5", "intent": "order_status", "last_text": "where is my order",
}
SAMPLE_REGION = {"zh": "北京", "en": "Beijing", "ko": "서울"}
SAMPLE_BY_READING: dict[Reading, str] = {
    "digits": "12345678", "date": "2026-12-01", "money": "128.50", "number": "3",
}


@dataclass(frozen=True)
class PromptText:
    flow: str  # a flow id, or SYSTEM for a built-in text
    where: str  # "greeting.prompt" in the flow, or the built-in text's name
    locale: str
    text: str  # the template ({slot} placeholders) or what a flow's WAV says
    wav: str | None  # a recording named in the flow file itself
    slots: tuple[str, ...]  # the placeholders; a prompt with any carries caller data
    key: str  # its recording slot (same text, same locale: same slot)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _prompt(flow: str, where: str, locale: str, text: str, wav: str | None) -> PromptText:
    return PromptText(flow, where, locale, text, wav, tuple(placeholders(text)),
                      prompt_key(locale, text))


def flow_prompts(flows: dict[str, Flow]) -> list[PromptText]:
    """Every prompt of every flow, per locale, in file order (node id first in ``where``)."""
    out: list[PromptText] = []
    for flow in sorted(flows.values(), key=lambda f: f.id):
        for path, prompt in walk_prompts(flow):
            where = ".".join(str(p) for p in (path[1:] if path[:1] == ("nodes",) else path))
            for loc, part in prompt.by_locale.items():
                if isinstance(part, str):
                    out.append(_prompt(flow.id, where, loc, part, None))
                else:
                    out.append(_prompt(flow.id, where, loc, part.text, part.wav))
    return out


def system_prompts(locales: set[str]) -> list[PromptText]:
    """The built-in texts in ``locales`` (those with a voice)."""
    return [_prompt(SYSTEM, name, loc, text, None)
            for name, texts in DEFAULT_TEXTS.items()
            for loc, text in texts.items() if loc in locales]


def all_prompts(flows: dict[str, Flow], locales: set[str]) -> list[PromptText]:
    return flow_prompts(flows) + system_prompts(locales)


def sample_text(template: str, locale: str, flow: Flow | None) -> str:
    """``template`` with each ``{slot}`` filled with a sample value read as a call reads it;
    ``ValueError`` naming a slot that has no sample (its reading is unknown)."""
    readings = slot_readings(flow) if flow is not None else {}
    values: dict[str, str] = {}
    for name in placeholders(template):
        reading = readings.get(name)
        value = SAMPLE_BY_NAME.get(name) or (
            SAMPLE_REGION.get(locale, SAMPLE_REGION["en"]) if name == "region" else None)
        if value is None and reading is not None:
            value = SAMPLE_BY_READING.get(reading)
        if value is None:
            raise ValueError(f"{{{name}}} has no sample value: give the flow a reading for "
                             "it (digits, date, money, number) to preview this prompt")
        values[name] = read_as(value, reading, locale)
    return render(template, values)
