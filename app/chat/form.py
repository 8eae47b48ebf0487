"""What a chat shows under the bot's question: buttons for keypad choices, an input hint.

A view of the flow (``app.flows.schema``) and the engine's state when it listens: a menu's
options with a key become buttons (their ``label``, else their first phrase, else the key),
plus the flow's agent key; a confirmation, the agent question and the callback offer become
yes/no-style buttons; a collect node becomes an input of its type. Pressing a button is the
same as pressing its key on a phone; typing is the same as speaking.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.flows.runtime import FlowState, Listen
from app.flows.schema import CallbackNode, CollectNode, Flow, MenuNode, Option, VoicemailNode

InputKind = Literal["text", "digits", "phone", "date"]

LABELS: dict[str, dict[str, str]] = {
    "yes": {"zh": "是", "en": "Yes"},
    "no": {"zh": "否", "en": "No"},
    "confirm_yes": {"zh": "正确", "en": "Yes, that's right"},
    "confirm_retry": {"zh": "重新输入", "en": "No, try again"},
    "agent": {"zh": "人工服务", "en": "Talk to an agent"},
    "callback_confirm": {"zh": "确认", "en": "Confirm"},
    "callback_other": {"zh": "其他号码", "en": "Another number"},
}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z]")


class Button(BaseModel):
    value: str
    label: str


class InputHint(BaseModel):
    kind: InputKind = "text"
    min_length: int | None = None
    max_length: int | None = None
    multiline: bool = False


class Ask(BaseModel):
    """The open question: what the client may press, what it may type."""

    buttons: list[Button] = Field(default_factory=list)
    input: InputHint = Field(default_factory=InputHint)
    locale: str

    def wire(self) -> dict[str, Any]:
        return {"type": "ask", **self.model_dump(exclude_none=True)}

    def values(self) -> list[str]:
        return [b.value for b in self.buttons]


def label(key: str, locale: str) -> str:
    texts = LABELS[key]
    return texts.get(locale) or texts.get(locale.split("-")[0]) or texts["en"]


def ask_for(flow: Flow, state: FlowState, listen: Listen) -> Ask:
    """The buttons and input a chat offers while the engine listens with ``listen``."""
    loc = listen.locale
    node = flow.nodes.get(state.node)
    if state.phase in ("agent_confirm",):
        return Ask(buttons=_pair("1", "yes", "2", "no", loc), locale=loc)
    if isinstance(node, CollectNode) and state.phase == "confirm":
        return Ask(buttons=_pair("1", "confirm_yes", "2", "confirm_retry", loc), locale=loc)
    if isinstance(node, CallbackNode):
        phone = InputHint(kind="phone")
        if state.phase == "callback_offer":
            return Ask(buttons=_pair("1", "callback_confirm", "2", "callback_other", loc),
                       input=phone, locale=loc)
        return Ask(input=phone, locale=loc)
    if isinstance(node, VoicemailNode):
        return Ask(input=InputHint(multiline=True), locale=loc)
    if isinstance(node, CollectNode):
        return _collect(node, loc)
    if isinstance(node, MenuNode):
        buttons = [Button(value=o.dtmf, label=_option_label(o, o.dtmf, loc))
                   for o in node.options if o.dtmf is not None]
        agent = flow.globals.agent_key
        if agent and agent not in {b.value for b in buttons}:
            buttons.append(Button(value=agent, label=label("agent", loc)))
        return Ask(buttons=buttons, locale=loc)
    return Ask(locale=loc)


def _collect(node: CollectNode, loc: str) -> Ask:
    if node.type == "yes_no":
        return Ask(buttons=_pair("1", "yes", "2", "no", loc), locale=loc)
    if node.type == "digits":
        return Ask(input=InputHint(kind="digits", min_length=node.min_length,
                                   max_length=node.max_length), locale=loc)
    if node.type in ("phone", "date"):
        return Ask(input=InputHint(kind=node.type), locale=loc)
    return Ask(locale=loc)


def _pair(key1: str, label1: str, key2: str, label2: str, loc: str) -> list[Button]:
    return [Button(value=key1, label=label(label1, loc)),
            Button(value=key2, label=label(label2, loc))]


def _option_label(option: Option, key: str, loc: str) -> str:
    if option.label:
        return option.label.get(loc) or next(iter(option.label.values()))
    phrases = option.phrases.get(loc) or next(iter(option.phrases.values()), [])
    return phrases[0] if phrases else key


def typed_locale(text: str, listen: Listen) -> str | None:
    """The menu language a typed message is written in, when the menu listens in several
    (zh/en at the language menu); None: the call's current one."""
    choices = [listen.locale, *listen.alt_locales]
    if len(choices) < 2:
        return None
    cjk, hangul, latin = (len(p.findall(text)) for p in (_CJK, _HANGUL, _LATIN))
    if cjk and "zh" in choices:
        return "zh"
    if hangul and "ko" in choices:
        return "ko"
    if latin and not cjk and not hangul and "en" in choices:
        return "en"
    return None
