"""Flow definitions (``ivr_flows/*.yaml``) as pydantic models.

A flow::

    id: demo_hotline
    locales: [zh, en]
    default_locale: zh
    voice: {zh: cmn, en: en-us}          # optional, per locale
    hotline_numbers: ["4008001234"]
    start: greeting
    queues: {general: {skills: [general]}, senior: {skills: [complaints]}}
    calendar: {timezone: Asia/Shanghai, hours: {mon: ["09:00-21:00"]}, prc_holidays: true}
    globals: {talk_to_agent: {queue: general}, no_input: {max_attempts: 3}}
    nodes:
      greeting: {kind: say, prompt: {zh: 您好, en: Hello, barge_in: false}, next: menu}

Prompts map each locale to a text (``{slot}`` placeholders are filled from the call's slots)
or to a recording ``{wav: path}``; ``barge_in`` says whether caller speech cuts the prompt.
Structural checks that need the whole flow (targets, cycles, queues, locales, intents) live in
``app.flows.loader``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.flows.calendar import BusinessCalendar

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
DTMF_KEYS = set("0123456789*#")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Wav(_Strict):
    wav: str
    text: str = Field(default="", description="what the recording says (logs, transcript)")


PromptPart = str | Wav


class Prompt(_Strict):
    """``{zh: 文本, en: {wav: prompts/en/hi.wav}, barge_in: true}``."""

    by_locale: dict[str, PromptPart]
    barge_in: bool = True

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "by_locale" not in raw:
            rest = {k: v for k, v in raw.items() if k != "barge_in"}
            out: dict[str, Any] = {"by_locale": rest}
            if "barge_in" in raw:
                out["barge_in"] = raw["barge_in"]
            return out
        if isinstance(raw, str):
            raise ValueError("a prompt maps each locale to a text: {zh: ..., en: ...}")
        return raw

    @field_validator("by_locale")
    @classmethod
    def _non_empty(cls, v: dict[str, PromptPart]) -> dict[str, PromptPart]:
        if not v:
            raise ValueError("prompt has no locale")
        for loc, part in v.items():
            if isinstance(part, str) and not part.strip():
                raise ValueError(f"empty prompt text for locale {loc!r}")
        return v


class Option(_Strict):
    """One menu choice: "press 1 or say sales" is one option."""

    intents: list[str] = Field(default_factory=list)
    phrases: dict[str, list[str]] = Field(default_factory=dict)
    dtmf: str | None = None
    any_intent: bool = Field(
        default=False,
        description="take any recognized intent and hand the same input to `next`",
    )
    set_locale: str | None = None
    set: dict[str, str] = Field(default_factory=dict, description="slots to set")
    label: dict[str, str] = Field(
        default_factory=dict, description="the option's button text per locale (web chat); "
        "default: its first phrase, else its key",
    )
    next: str

    @model_validator(mode="before")
    @classmethod
    def _one_intent(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "intent" in raw:
            raw = dict(raw)
            one = raw.pop("intent")
            raw["intents"] = [one, *raw.get("intents", [])]
        return raw

    @field_validator("dtmf")
    @classmethod
    def _dtmf(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 1 or v not in DTMF_KEYS):
            raise ValueError(f"dtmf must be one key of 0-9 * #, got {v!r}")
        return v

    @model_validator(mode="after")
    def _matches_something(self) -> Option:
        if not (self.intents or self.phrases or self.dtmf or self.any_intent):
            raise ValueError("option matches nothing: give intent, phrases or dtmf")
        return self


Reading = Literal["digits", "date", "money", "number", "text"]
"""How a slot's value is read aloud: digit by digit, as a date, an amount, a quantity, as is."""


class _Node(_Strict):
    prompt: Prompt | None = None
    reprompt: Prompt | None = Field(default=None, description="after no-input/no-match")
    timeout_s: float | None = Field(default=None, gt=0)


class SayNode(_Node):
    kind: Literal["say"]
    prompt: Prompt
    next: str


class MenuNode(_Node):
    kind: Literal["menu"]
    prompt: Prompt
    options: list[Option] = Field(min_length=1)
    listen_locales: list[str] = Field(
        default_factory=list, description="recognize these locales too (language choice)"
    )
    no_match: str | None = Field(default=None, description="node after the last no-match")
    no_input: str | None = Field(default=None, description="node after the last no-input")


CollectType = Literal["digits", "phone", "date", "yes_no", "text"]


class CollectNode(_Node):
    kind: Literal["collect"]
    prompt: Prompt
    slot: str
    type: CollectType
    min_length: int = Field(default=1, ge=1)
    max_length: int = Field(default=32, ge=1)
    terminator: str = "#"
    pattern: str | None = Field(default=None, description="regex the value must fullmatch")
    confirm: bool = False
    confirm_prompt: Prompt | None = None
    invalid_prompt: Prompt | None = None
    max_attempts: int | None = Field(default=None, ge=1)
    next: str
    on_no: str | None = Field(default=None, description="yes_no: node when the answer is no")
    on_fail: str | None = Field(default=None, description="default: escalate to an agent")
    reading: Reading | None = Field(
        default=None, description="how the slot is read aloud; default by type (digits and "
        "phone: digits, date: date)",
    )
    sensitive: bool = Field(
        default=False, description="card numbers, PINs, ID numbers: the value never reaches "
        "the event log, the logs, the recording (paused, the caller told) or the TTS cache",
    )

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"bad pattern: {exc}") from exc
        return v

    @model_validator(mode="after")
    def _lengths(self) -> CollectNode:
        if self.min_length > self.max_length:
            raise ValueError("min_length is greater than max_length")
        return self


class AnswerNode(_Node):
    kind: Literal["answer"]
    intent: str | None = Field(default=None, description="default: the last recognized one")
    next: str
    fallback: str | None = Field(default=None, description="node when there is no answer")


class WebhookNode(_Node):
    kind: Literal["webhook"]
    url: str
    method: Literal["GET", "POST", "PUT"] = "GET"
    body: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=3.0, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=5)
    save: dict[str, str] = Field(
        default_factory=dict, description="slot -> dotted path in the JSON response"
    )
    next: str
    on_status: dict[int, str] = Field(default_factory=dict)
    on_failure: str


class Condition(_Strict):
    """Every field given must hold (AND). Use several cases for OR."""

    slot: str | None = None
    equals: str | None = None
    one_of: list[str] | None = Field(default=None, alias="in")
    exists: bool | None = None
    matches: str | None = None
    calendar: Literal["open", "closed", "holiday"] | None = None
    region: list[str] | None = None
    sentiment: Literal["negative", "neutral", "positive"] | None = None
    sentiment_below: float | None = None
    intent: str | None = None
    locale: str | None = None
    counter: str | None = None
    visits: str | None = Field(default=None, description="node name: times entered")
    gte: int | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _coherent(self) -> Condition:
        needs_slot = (self.equals, self.one_of, self.exists, self.matches)
        if any(v is not None for v in needs_slot) and self.slot is None:
            raise ValueError("equals/in/exists/matches need `slot`")
        if (self.counter or self.visits) and self.gte is None:
            raise ValueError("counter/visits need `gte`")
        if not self.model_fields_set:
            raise ValueError("empty condition")
        return self


class Case(_Strict):
    when: Condition
    next: str


class BranchNode(_Node):
    kind: Literal["branch"]
    cases: list[Case] = Field(min_length=1)
    default: str


class TransferNode(_Node):
    kind: Literal["transfer"]
    queue: str
    reason: str
    note: str = ""
    on_timeout: str | None = Field(
        default=None, description="node when no agent answers in the queue's max wait; "
        "default: globals.queue_timeout"
    )


class HangupNode(_Node):
    kind: Literal["hangup"]
    outcome: str = "completed"


class VoicemailNode(_Node):
    kind: Literal["voicemail"]
    prompt: Prompt
    thanks: Prompt | None = None
    max_s: float = Field(default=60, gt=0, le=600)


class CallbackNode(_Node):
    kind: Literal["callback"]
    prompt: Prompt = Field(description="offer; {callback_number} is the caller's number")
    ask_number: Prompt
    thanks: Prompt


Node = Annotated[
    SayNode | MenuNode | CollectNode | AnswerNode | WebhookNode | BranchNode | TransferNode
    | HangupNode | VoicemailNode | CallbackNode,
    Field(discriminator="kind"),
]
NODE_KINDS = (
    "say", "menu", "collect", "answer", "webhook", "branch", "transfer", "hangup",
    "voicemail", "callback",
)
LISTENING_KINDS = {"menu", "collect", "voicemail", "callback"}


class Queue(_Strict):
    skills: list[str] = Field(default_factory=list)
    description: str = ""


class AgentHandler(_Strict):
    queue: str
    confirm: bool = True
    confirm_prompt: Prompt | None = None
    prompt: Prompt | None = Field(default=None, description="said before the transfer")


class RetryHandler(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=10)
    prompt: Prompt | None = None
    queue: str | None = Field(default=None, description="escalation queue; default agent's")


class GoodbyeHandler(_Strict):
    prompt: Prompt | None = None


class Globals(_Strict):
    talk_to_agent: AgentHandler
    no_input: RetryHandler = Field(default_factory=RetryHandler)
    no_match: RetryHandler = Field(default_factory=RetryHandler)
    goodbye: GoodbyeHandler = Field(default_factory=GoodbyeHandler)
    agent_key: str | None = "0"
    repeat_key: str | None = "*"
    timeout_s: float = Field(default=6.0, gt=0)
    error_prompt: Prompt | None = None
    queue_timeout: str | None = Field(
        default=None,
        description="node when nobody answers a transfer in time (a callback/voicemail offer);"
        " without one the caller hears an apology and the call ends with outcome no_agent",
    )


class Flow(_Strict):
    id: str
    description: str = ""
    locales: list[str] = Field(min_length=1)
    default_locale: str
    voice: dict[str, str] = Field(default_factory=dict)
    hotline_numbers: list[str] = Field(default_factory=list)
    recording: bool = Field(
        default=False,
        description="record calls (stereo WAV); only when the greeting tells the caller",
    )
    start: str
    queues: dict[str, Queue] = Field(min_length=1)
    calendar: BusinessCalendar | None = None
    globals: Globals
    nodes: dict[str, Node] = Field(min_length=1)
    readings: dict[str, Reading] = Field(
        default_factory=dict, description="slot -> how prompts read it aloud (for slots a "
        "webhook saves; collect nodes default by their type)",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("flow id must be letters, digits, _ or -")
        return v

    @model_validator(mode="after")
    def _default_locale(self) -> Flow:
        if self.default_locale not in self.locales:
            raise ValueError(f"default_locale {self.default_locale!r} is not in locales")
        return self
