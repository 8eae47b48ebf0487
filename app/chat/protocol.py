"""The chat wire protocol: JSON text frames over the chat session's WebSocket.

Client -> server (one JSON object per frame)::

    {"type": "text", "text": "我想查订单"}           # typed: understood like speech
    {"type": "button", "value": "1", "ask": 7}    # a button of the open question (ask seq 7)
    {"type": "end"}                               # the visitor ends the chat

Server -> client: every message has a ``type`` and a ``seq`` (1, 2, ...: a reconnecting
client receives the whole chat again from seq 1), except ``error``, which answers one bad
client frame on that connection only::

    {"type": "message", "seq": 3, "from": "bot", "text": "...", "locale": "zh"}
    {"type": "message", "seq": 4, "from": "user", "text": "...", "button": "1"}
    {"type": "ask", "seq": 5, "buttons": [{"value": "1", "label": "查询订单"}],
     "input": {"kind": "digits", "min_length": 4, "max_length": 12}, "locale": "zh"}
    {"type": "typing", "seq": 6, "on": true}
    {"type": "queue", "seq": 8, "queue": "general", "position": 1, "text": "..."}
    {"type": "end", "seq": 9, "outcome": "self_service"}
    {"type": "error", "field": "text", "reason": "at most 1000 characters, got 1204"}

Client text is untrusted: it is normalized (NFC), stripped of control and bidirectional
override characters, limited in length, and only ever shown as text (never as HTML).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from app.flows.schema import DTMF_KEYS

MAX_BUTTON_CHARS = 16
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E,
                                   0x200F, 0x061C)}
_FIELDS = {"text": {"type", "text"}, "button": {"type", "value", "ask"}, "end": {"type"}}


class ChatInputError(ValueError):
    """A client frame the chat does not take: which field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def reply(self) -> dict[str, Any]:
        return {"type": "error", "field": self.field, "reason": self.reason}


@dataclass(frozen=True)
class TextIn:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ButtonIn:
    value: str
    ask: int | None = None
    type: Literal["button"] = "button"


@dataclass(frozen=True)
class EndIn:
    type: Literal["end"] = "end"


ClientMessage = TextIn | ButtonIn | EndIn


def clean_text(text: str) -> str:
    """NFC text without control characters (newlines and tabs kept) or bidi overrides."""
    kept = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in "\n\t":
            kept.append(ch)
        elif ch in _BIDI_CONTROLS or unicodedata.category(ch) == "Cc":
            continue
        else:
            kept.append(ch)
    return "".join(kept).strip()


def parse_client(raw: str, max_chars: int) -> ClientMessage:
    """One client frame; raises ``ChatInputError`` naming the field and the reason."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ChatInputError("(frame)", f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise ChatInputError("(frame)", "a JSON object with a type is expected")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise ChatInputError("type", f"one of {', '.join(_FIELDS)} is expected")
    unknown = sorted(set(data) - _FIELDS[kind])
    if unknown:
        raise ChatInputError(str(unknown[0])[:40], f"unknown field in a {kind} message")
    if kind == "end":
        return EndIn()
    if kind == "text":
        return TextIn(text=_text(data.get("text"), max_chars))
    return _button(data)


def _text(value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise ChatInputError("text", "a string is expected")
    if len(value) > max_chars:
        raise ChatInputError("text", f"at most {max_chars} characters, got {len(value)}")
    text = clean_text(value)
    if not text:
        raise ChatInputError("text", "the message is empty")
    return text


def _button(data: dict[str, Any]) -> ButtonIn:
    value = data.get("value")
    if not isinstance(value, str) or not value:
        raise ChatInputError("value", "the button's value (a string) is expected")
    if len(value) > MAX_BUTTON_CHARS or any(ch not in DTMF_KEYS for ch in value):
        raise ChatInputError("value", "a button value is keypad keys (0-9 * #)")
    ask = data.get("ask")
    if ask is not None and (isinstance(ask, bool) or not isinstance(ask, int) or ask < 1):
        raise ChatInputError("ask", "the seq of the question (an integer >= 1) is expected")
    return ButtonIn(value=value, ask=ask)
