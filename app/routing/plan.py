"""What goes into a routing decision (``RouteRequest``) and what comes out (``RoutePlan``).

Both are JSON values: a plan is printed by ``hotline routing explain --json``, logged as a
``routing_decision`` event and replayed by ``hotline routing replay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.routing.config import SentimentLabel, Strategy, Target
from app.routing.region import CallerRegion

SkipReason = Literal[
    "offline", "away", "busy", "ringing", "wrap_up", "delayed", "missing_skill",
    "wrong_language", "outside_hours", "already_tried", "unknown_agent",
]
StepKind = Literal["group", "agent", "number", "voicemail", "callback"]
StepStatus = Literal["queue", "ring", "closed", "empty", "unavailable", "final"]
PlanSource = Literal["rule", "default", "flow_queue", "transfer", "none"]


class RouteRequest(BaseModel):
    """A call asking for a human: what the bot and the CRM know (no I/O happens here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str = Field(min_length=1, max_length=64)
    hotline_number: str
    caller_number: str = ""
    locale: str = "zh"
    queue: str | None = Field(default=None, description="the flow's requested queue")
    skills: tuple[str, ...] = Field(default=(), description="the flow's requested skills")
    intent: str | None = None
    slots: dict[str, str] = Field(default_factory=dict)
    sentiment: SentimentLabel | None = None
    sentiment_score: float | None = Field(default=None, ge=-1, le=1)
    crm: dict[str, Any] = Field(default_factory=dict, description="CRM webhook result")
    last_agent: str | None = Field(default=None, description="who served this caller last")
    last_served_at: datetime | None = None
    priority: int = Field(default=0, description="added to the rule's priority")
    callback: bool = False
    tried: tuple[str, ...] = Field(default=(), description="agents already offered this call")
    transfer_to: Target | None = Field(default=None, description="an agent's transfer: this "
                                       "target instead of the rules")
    transferred_by: str | None = None


# Plain slotted dataclasses (pydantic serializes and validates them as fields): a decision
# builds dozens of these, and a pydantic model costs ~20x more to construct.
@dataclass(frozen=True, slots=True)
class Skip:
    agent: str
    reason: SkipReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    agent: str
    name: str
    devices: tuple[str, ...]
    why: str = ""


@dataclass(frozen=True, slots=True)
class RuleCheck:
    index: int
    name: str
    matched: bool
    reason: str


@dataclass(slots=True, kw_only=True)
class Step:
    """One stage of the plan: a group queue, an agent or number to ring, or a final exit.
    ``starts_after_s``: from now, if every earlier step waits in full."""

    kind: StepKind
    group: str | None = None
    agent: str | None = None
    number: str | None = None
    status: StepStatus
    detail: str = ""
    strategy: Strategy | None = None
    simultaneous: bool = False
    ring_timeout_s: float | None = None
    max_wait_s: float | None = None
    starts_after_s: float
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def label(self) -> str:
        value = self.group or self.agent or self.number
        return f"{self.kind} {value}" if value else self.kind

    def summary(self) -> str:
        text = f"{self.label()}: {self.status}"
        if self.detail:
            text += f" ({self.detail})"
        if self.kind in ("group", "agent"):
            text += f", {len(self.candidates)} candidate(s)"
        return text


class TimeFacts(BaseModel):
    local: datetime
    day: str
    calendar: str | None = None


class RoutePlan(BaseModel):
    call_id: str
    hotline_number: str
    flow: str | None = None
    at: datetime
    time: TimeFacts
    caller: CallerRegion
    source: PlanSource
    rule: str | None = None
    rule_index: int | None = None
    rules: list[RuleCheck] = Field(default_factory=list)
    target: Target | None = None
    priority: int = 0
    steps: list[Step] = Field(default_factory=list)
    reason: str

    def first_queue(self) -> int | None:
        """Index of the first step that can take the call (queue or ring), if any."""
        return next((i for i, s in enumerate(self.steps) if s.status in ("queue", "ring")),
                    None)

    def candidate_ids(self, step: int = 0) -> list[str]:
        return [c.agent for c in self.steps[step].candidates] if self.steps else []
