"""Read models returned by ``CallRepository``: pydantic, so FastAPI serializes them as is."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Speaker = Literal["caller", "bot", "agent"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class Cdr(_Out):
    """The call detail record. ``ended_at``/``duration_s``/``outcome`` are None while live."""

    id: str
    hotline_number: str
    caller_number: str
    channel: str
    locale: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    outcome: str | None
    final_intent: str | None
    handoff_target: str | None
    flow_id: str | None
    flow_state: dict[str, Any] | None
    caller_region: str | None
    end_reason: str | None = None
    media: dict[str, Any] | None = None
    node_id: str | None = None  # the node that ran the call (several nodes, one database)
    # the human side (app/handoff)
    routing_rule: str | None = None
    routing_target: str | None = None
    queue_group: str | None = None
    queued_at: datetime | None = None
    queue_left_at: datetime | None = None
    wait_s: float | None = None
    ring_attempts: list[dict[str, Any]] | None = None
    answered_by: str | None = None
    agent_answered_at: datetime | None = None
    talk_s: float | None = None
    hold_s: float | None = None
    transfers: list[dict[str, Any]] | None = None
    disposition: str | None = None
    wrap_notes: str | None = None
    bot_should_handle: bool | None = None
    bot_intent: str | None = None
    abandoned: bool = False
    callback_requested: bool = False
    callback_status: str | None = None
    callback_done_at: datetime | None = None


class EventOut(_Out):
    """One logged event: JSON with a ``type`` field, as the agent console receives it."""

    call_id: str
    seq: int
    at: datetime
    type: str
    payload: dict[str, Any]


class TurnOut(_Out):
    """One turn of the conversation (a view of the event log)."""

    speaker: Speaker
    text: str
    seq: int
    confidence: float | None
    heard: Literal["sure", "unsure"]


class RecordingOut(_Out):
    id: int
    path: str
    duration_s: float
    caller_notified: bool
    created_at: datetime


class SentimentPoint(_Out):
    """One ``sentiment`` event: ``t_s`` seconds after the call started."""

    at: datetime
    t_s: float
    score: float
    label: str


class CallPage(_Out):
    items: list[Cdr]
    total: int
    limit: int
    offset: int


class CallDetail(_Out):
    cdr: Cdr
    turns: list[TurnOut]
    events: list[EventOut]
    flow_path: list[str]
    sentiment: list[SentimentPoint]
    recordings: list[RecordingOut]
