"""What goes in and out of the flow engine: call context, caller input, state, actions.

All are pydantic values with a ``type``/``kind`` field: the state is stored with the call and
survives a restart (``FlowState.model_validate_json(state.model_dump_json())``); actions go to
the call session as they are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from app.events import Entity, IntentResult, Sentiment, utc_now


class CallContext(BaseModel):
    call_id: str = ""
    caller_number: str = ""
    hotline_number: str = ""
    locale: str | None = Field(default=None, description="default: the flow's default locale")
    now: datetime = Field(default_factory=utc_now)


class CallerInput(BaseModel):
    """Speech, keypad, silence or a webhook answer: one path into the engine."""

    kind: Literal["speech", "dtmf", "no_input", "webhook_result", "queue_timeout"]
    at: datetime | None = None
    text: str = ""
    intent: IntentResult | None = None
    entities: list[Entity] = Field(default_factory=list)
    sentiment: Sentiment | None = None
    digits: str = ""
    ok: bool = False
    status: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    error: str = ""

    @classmethod
    def speech(
        cls, text: str, intent: IntentResult | None = None, entities: list[Entity] | None = None,
        sentiment: Sentiment | None = None, at: datetime | None = None,
    ) -> CallerInput:
        return cls(
            kind="speech", text=text, intent=intent, entities=entities or [],
            sentiment=sentiment, at=at,
        )

    @classmethod
    def dtmf(cls, digits: str, at: datetime | None = None) -> CallerInput:
        return cls(kind="dtmf", digits=digits, at=at)

    @classmethod
    def no_input(cls, at: datetime | None = None) -> CallerInput:
        return cls(kind="no_input", at=at)

    @classmethod
    def webhook_result(
        cls, ok: bool, status: int | None = None, data: dict[str, Any] | None = None,
        error: str = "", at: datetime | None = None,
    ) -> CallerInput:
        return cls(
            kind="webhook_result", ok=ok, status=status, data=data or {}, error=error, at=at
        )

    def summary(self) -> str:
        if self.kind == "speech":
            return f"speech:{self.text}"
        if self.kind == "dtmf":
            return f"dtmf:{self.digits}"
        if self.kind == "webhook_result":
            return f"webhook:{'ok' if self.ok else 'fail'}:{self.status}:{self.error}"
        return self.kind


class Say(BaseModel):
    type: Literal["say"] = "say"
    text: str = ""
    wav: str | None = None
    locale: str
    voice: str | None = None
    barge_in: bool = True
    cache: bool = Field(
        default=True, description="False when the text was filled from the call's slots "
        "(caller data such as a read-back card number): the TTS never keeps it on disk",
    )
    display: str | None = Field(
        default=None, description="the text for a screen (web chat) when the spoken text "
        "reads slots aloud differently (\"4567\", not \"4 5 6 7\"); None: the same as text",
    )


class Listen(BaseModel):
    type: Literal["listen"] = "listen"
    grammar: list[str] | None = Field(
        default=None, description="Vosk grammar phrases; None = free speech"
    )
    timeout_s: float
    dtmf_allowed: bool = True
    max_digits: int = Field(default=1, description="deliver keypad input after this many keys")
    terminator: str | None = Field(default=None, description="key that ends keypad input")
    locale: str
    alt_locales: list[str] = Field(default_factory=list, description="also try these")
    sensitive: bool = Field(default=False, description="a sensitive collect node's listen")


class Webhook(BaseModel):
    type: Literal["webhook"] = "webhook"
    url: str = Field(description="absolute, or relative to the HTTP client's base_url")
    method: Literal["GET", "POST", "PUT"] = "GET"
    body: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = 3.0
    retries: int = 1


class Transfer(BaseModel):
    type: Literal["transfer"] = "transfer"
    queue: str
    skills: list[str] = Field(default_factory=list)
    reason: str
    note: str = ""


class ResumeAt(BaseModel):
    """Not an action: what a wait for an agent may return when the agent hands the caller
    back to the bot at ``node`` (``FlowEngine.resume_at``)."""

    node: str


class Hangup(BaseModel):
    type: Literal["hangup"] = "hangup"
    outcome: str


class SetLocale(BaseModel):
    type: Literal["set_locale"] = "set_locale"
    locale: str


Action = Annotated[
    Say | Listen | Webhook | Transfer | Hangup | SetLocale, Field(discriminator="type")
]

Phase = Literal[
    "listen", "confirm", "agent_confirm", "webhook", "callback_offer", "callback_number",
    "voicemail", "done",
]


class Pending(BaseModel):
    value: str = ""
    spoken: str = ""


class FlowState(BaseModel):
    """Everything the engine needs to continue a call; a JSON-serializable value."""

    flow_id: str
    call_id: str = ""
    caller_number: str = ""
    hotline_number: str = ""
    caller_region: dict[str, str] = Field(default_factory=dict, description="locale -> name")
    locale: str
    node: str
    phase: Phase = "listen"
    slots: dict[str, str] = Field(default_factory=dict)
    pending: Pending | None = None
    resume_phase: Phase | None = Field(default=None, description="after agent_confirm: no")
    attempts: dict[str, int] = Field(
        default_factory=dict, description="this node's no_input / no_match counts"
    )
    counters: dict[str, int] = Field(default_factory=dict, description="whole-call totals")
    visits: dict[str, int] = Field(default_factory=dict)
    agent_confirmed: bool = False
    last_intent: str | None = None
    last_confidence: float | None = None
    last_text: str = ""
    sentiment_score: float | None = None
    sentiment_label: str | None = None
    last_prompts: list[Say] = Field(default_factory=list, description="for `*` repeat")
    last_listen: Listen | None = None
    path: list[str] = Field(default_factory=list)
    now: datetime
    outcome: str | None = None

    @property
    def done(self) -> bool:
        return self.phase == "done"


class Step(BaseModel):
    state: FlowState
    actions: list[Action] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    sensitive: bool = Field(
        default=False, description="the call is at a sensitive collect node: pause the "
        "recording and keep what the caller says or presses out of the record",
    )
    secrets: list[str] = Field(
        default_factory=list, description="values a sensitive node collected in this step: "
        "masked wherever they would be recorded",
    )

    @property
    def says(self) -> list[Say]:
        return [a for a in self.actions if isinstance(a, Say)]

    @property
    def text(self) -> str:
        return " ".join(a.text for a in self.says)

    @property
    def listen(self) -> Listen | None:
        found = [a for a in self.actions if isinstance(a, Listen)]
        return found[-1] if found else None

    @property
    def transfer(self) -> Transfer | None:
        found = [a for a in self.actions if isinstance(a, Transfer)]
        return found[-1] if found else None

    @property
    def hangup(self) -> Hangup | None:
        found = [a for a in self.actions if isinstance(a, Hangup)]
        return found[-1] if found else None

    @property
    def webhook(self) -> Webhook | None:
        found = [a for a in self.actions if isinstance(a, Webhook)]
        return found[-1] if found else None
