"""Typed routing events (pydantic, a ``type`` field each, as ``app/events.py``).

Presence changes, offers, queue joins/leaves, overflows and every routing decision with its
reason: the agent desk and the call's event log receive them as JSON without translation.
Call-scoped events carry ``call_id`` (every call log line does).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

OfferState = Literal["pending", "accepted", "rejected", "timed_out", "cancelled", "busy"]


class AgentStateChanged(BaseModel):
    type: Literal["agent_state"] = "agent_state"
    agent_id: str
    state: str
    previous: str
    chosen: str
    away_reason: str | None = None
    system: str
    cause: str
    at: datetime
    forced_by: str | None = None  # the supervisor who set it from the monitor


class OfferChanged(BaseModel):
    """An offer of a call to an agent was made (pending) or ended (any other state)."""

    type: Literal["offer"] = "offer"
    offer_id: str
    call_id: str
    agent_id: str
    group: str | None
    state: OfferState
    devices: list[str] = Field(default_factory=list)
    ring_timeout_s: float = 0.0
    at: datetime


class QueueJoined(BaseModel):
    type: Literal["queue_joined"] = "queue_joined"
    call_id: str
    group: str
    position: int
    estimated_wait_s: float | None
    priority: int
    callback: bool = False
    at: datetime


QueueLeaveReason = Literal["answered", "abandoned", "overflow", "callback", "cancelled"]


class QueueLeft(BaseModel):
    type: Literal["queue_left"] = "queue_left"
    call_id: str
    group: str
    reason: QueueLeaveReason
    waited_s: float
    at: datetime


class RoutingDecision(BaseModel):
    """Which rule matched, the target, and why (one line per plan step)."""

    type: Literal["routing_decision"] = "routing_decision"
    call_id: str
    hotline_number: str
    rule: str | None
    source: str
    target: str | None
    reason: str
    steps: list[str] = Field(default_factory=list)
    at: datetime


class Overflowed(BaseModel):
    type: Literal["overflow"] = "overflow"
    call_id: str
    from_step: str
    to_step: str
    reason: Literal["max_wait", "closed", "empty", "no_answer", "unavailable"]
    at: datetime


ExitAction = Literal["voicemail", "callback", "dial_number", "no_route"]


class QueueExit(BaseModel):
    """The call leaves routing for the flow: voicemail, a callback offer, dial a number, or
    no route at all (the flow's queue-timeout offer)."""

    type: Literal["queue_exit"] = "queue_exit"
    call_id: str
    action: ExitAction
    number: str | None = None
    reason: str
    group: str | None = Field(default=None, description="the group it was queued in last")
    joined_at: datetime | None = Field(default=None, description="keep for a callback task")
    at: datetime


RoutingEvent = Annotated[
    AgentStateChanged | OfferChanged | QueueJoined | QueueLeft | RoutingDecision | Overflowed
    | QueueExit,
    Field(discriminator="type"),
]
