"""What the agent sees before saying a word, and what routing decides on.

``HandoffPacket``: the caller's number and region, the hotline, intent and confidence, the
slots, sentiment with its trend, the whole bot conversation, the flow path, the caller's
earlier calls with outcomes and dispositions, and the CRM data. It is built from the call's
record when the bot hands over (``build_packet``) and sent with every offer to the desk.
``route_request`` turns the same facts into the routing engine's ``RouteRequest``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.flows.runtime import FlowState, Transfer, Webhook
from app.flows.webhook import run_webhook
from app.nlu.sentiment import SentimentTrend
from app.record import CallEvent, CrmResult, HandoffRequested, SentimentScored, TranscriptTurn
from app.routing.config import CrmWebhook
from app.routing.plan import RouteRequest
from app.routing.region import lookup
from app.storage.handoff_repo import PreviousCall

Trend = Literal["rising", "falling", "steady"]
TREND_SLOPE = 0.05  # per turn: less is "steady"


class HandoffPacket(BaseModel):
    call_id: str
    channel: Literal["voice", "chat"] = "voice"  # a chat is answered by typing at the desk
    hotline_number: str
    caller_number: str
    caller_region: str
    locale: str
    queue: str
    reason: str
    note: str = ""
    intent: str | None = None
    confidence: float | None = None
    slots: dict[str, str] = Field(default_factory=dict)
    sentiment: float | None = None
    sentiment_label: str | None = None
    sentiment_trend: Trend = "steady"
    sentiment_scores: list[float] = Field(default_factory=list)
    transcript: list[TranscriptTurn] = Field(default_factory=list)
    flow_path: list[str] = Field(default_factory=list)
    previous_calls: list[PreviousCall] = Field(default_factory=list)
    crm: dict[str, Any] = Field(default_factory=dict)
    callback: bool = False
    transferred_by: str | None = None
    handed_over_at: datetime | None = None


def trend_of(scores: list[float]) -> Trend:
    tracker = SentimentTrend()
    for score in scores:
        tracker.add(score)
    slope = tracker.trend
    return "rising" if slope >= TREND_SLOPE else "falling" if slope <= -TREND_SLOPE \
        else "steady"


def build_packet(handoff: HandoffRequested, *, call_id: str, hotline_number: str,
                 caller_number: str, locale: str, state: FlowState | None,
                 typed: list[tuple[int, CallEvent]], previous: list[PreviousCall],
                 crm: dict[str, Any], at: datetime,
                 channel: Literal["voice", "chat"] = "voice") -> HandoffPacket:
    scores = [e.score for _, e in typed if isinstance(e, SentimentScored)]
    region = lookup(caller_number if caller_number != "anonymous" else "")
    return HandoffPacket(
        call_id=call_id, channel=channel, hotline_number=hotline_number,
        caller_number=caller_number, caller_region=region.label(), locale=locale,
        queue=handoff.queue,
        reason=handoff.reason, note=handoff.note, intent=handoff.intent,
        confidence=handoff.confidence, slots=dict(state.slots) if state else {},
        sentiment=handoff.sentiment,
        sentiment_label=state.sentiment_label if state else None,
        sentiment_trend=trend_of(scores), sentiment_scores=scores[-20:],
        transcript=handoff.transcript, flow_path=handoff.flow_path, previous_calls=previous,
        crm=crm, handed_over_at=at,
    )


def _label(score: float | None) -> Literal["negative", "neutral", "positive"] | None:
    if score is None:
        return None
    return "negative" if score <= -0.3 else "positive" if score >= 0.3 else "neutral"


def route_request(packet: HandoffPacket, action: Transfer,
                  previous: list[PreviousCall]) -> RouteRequest:
    """The routing request of a handed-over call (the flow's queue and skills, the bot's
    understanding, the CRM's answer, who served the caller last)."""
    last = next((p for p in previous if p.answered_by), None)
    label = packet.sentiment_label if packet.sentiment_label in (
        "negative", "neutral", "positive") else _label(packet.sentiment)
    crm_priority = packet.crm.get("priority")
    return RouteRequest(
        call_id=packet.call_id, hotline_number=packet.hotline_number,
        caller_number="" if packet.caller_number == "anonymous" else packet.caller_number,
        locale=packet.locale, queue=action.queue or None, skills=tuple(action.skills),
        intent=packet.intent, slots={k: str(v) for k, v in packet.slots.items()},
        sentiment=label,  # type: ignore[arg-type]
        sentiment_score=None if packet.sentiment is None else
        max(-1.0, min(1.0, packet.sentiment)),
        crm=packet.crm, last_agent=last.answered_by if last else None,
        last_served_at=last.started_at if last else None,
        priority=crm_priority if isinstance(crm_priority, int) and not isinstance(
            crm_priority, bool) else 0,
    )


async def ask_crm(webhook: CrmWebhook, client: Any, *, caller_number: str,
                  hotline_number: str, intent: str | None, slots: dict[str, str]
                  ) -> tuple[dict[str, Any], CrmResult | None, str | None]:
    """(data, event, problem): the CRM's JSON object about the caller, or a problem."""
    body = {"caller_number": caller_number, "hotline_number": hotline_number,
            "intent": intent or "", **{f"slot_{k}": v for k, v in slots.items()}}
    result = await run_webhook(Webhook(url=webhook.url, method="POST", body=body,
                                       timeout_s=webhook.timeout_s, retries=0), client)
    if not result.ok:
        return {}, None, result.error or f"status {result.status}"
    return dict(result.data), CrmResult(data=dict(result.data)), None
