"""What-if: re-run past calls' handoffs against other rules and rosters.

Handoffs come from the event log: each ``transfer`` event of a call (with what the bot knew
by then: locale, intent, sentiment, the flow's queue and its skills, CRM data logged as a
``crm`` event) becomes a ``RouteRequest`` at the time it happened. Each side (the routing in
the database, a proposed file, a roster) runs every handoff through the simulator on the
same arrival times; callers who hung up while queued keep the patience they showed. The
report compares answer rate, waits and exits per side and lists the calls whose routing
changed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.flows.schema import Flow
from app.routing.config import SentimentLabel
from app.routing.engine import CompiledRouting
from app.routing.plan import RouteRequest
from app.routing.simulate import AgentSetup, Arrival, CallResult, simulate
from app.storage.db import Database
from app.storage.models import CallEventRow, CallRow

_TYPES = ("call_started", "locale_changed", "intent", "sentiment", "crm", "handoff_requested",
          "transfer", "queue_timeout")
_CHUNK = 500
_SENTIMENTS: dict[str, SentimentLabel] = {
    "negative": "negative", "neutral": "neutral", "positive": "positive",
}


@dataclass
class Handoff:
    request: RouteRequest
    at: datetime
    outcome: str | None = None  # the call's recorded outcome
    waited_s: float | None = None  # recorded wait in the queue
    abandoned: bool = False


@dataclass
class _Known:
    locale: str
    intent: str | None = None
    sentiment: str | None = None
    score: float | None = None
    crm: dict[str, Any] = field(default_factory=dict)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def _label(score: float | None) -> str | None:
    if score is None:
        return None
    return "negative" if score < -0.3 else "positive" if score > 0.3 else "neutral"


def _handoffs_of(call: CallRow, events: Sequence[CallEventRow],
                 flows: dict[str, Flow] | None) -> list[Handoff]:
    known = _Known(locale=call.locale)  # the last locale; call_started has the first
    slots = dict((call.flow_state or {}).get("slots") or {})
    flow = (flows or {}).get(call.flow_id or "")
    out: list[Handoff] = []
    for ev in events:
        p = ev.payload
        if ev.type in ("call_started", "locale_changed") and p.get("locale"):
            known.locale = str(p["locale"])
        elif ev.type in ("intent", "handoff_requested") and p.get("intent"):
            known.intent = str(p["intent"])
        if ev.type == "sentiment":
            known.sentiment, known.score = p.get("label"), p.get("score")
        elif ev.type == "handoff_requested" and isinstance(p.get("sentiment"), int | float):
            known.score = float(p["sentiment"])
            known.sentiment = known.sentiment or _label(known.score)
        elif ev.type == "crm" and isinstance(p.get("data"), dict):
            known.crm.update(p["data"])
        elif ev.type == "queue_timeout" and out:
            out[-1].waited_s = float(p.get("waited_s") or 0)
        elif ev.type == "transfer":
            queue = str(p.get("queue") or "")
            skills = tuple(flow.queues[queue].skills) if flow and queue in flow.queues else ()
            call_id = call.id if not out else f"{call.id}#{len(out) + 1}"
            request = RouteRequest(
                call_id=call_id[:64], hotline_number=call.hotline_number,
                caller_number=call.caller_number, locale=known.locale, queue=queue or None,
                skills=skills, intent=known.intent, slots={str(k): str(v) for k, v in
                                                           slots.items()},
                sentiment=_SENTIMENTS.get(known.sentiment or ""),
                sentiment_score=known.score, crm=dict(known.crm),
            )
            out.append(Handoff(request, ev.at, call.outcome))
    if out and call.outcome == "abandoned" and call.ended_at is not None:
        last = out[-1]
        last.abandoned = True
        last.waited_s = max(0.0, (call.ended_at - last.at).total_seconds())
    return out


def load_handoffs(db: Database, start: datetime, end: datetime,
                  flows: dict[str, Flow] | None = None) -> list[Handoff]:
    """Every handoff of the calls started in [start, end), oldest first."""
    with db.session() as s:
        calls = list(s.scalars(select(CallRow).where(CallRow.started_at >= start,
                                                     CallRow.started_at < end)
                               .order_by(CallRow.started_at, CallRow.id)))
        by_call: dict[str, list[CallEventRow]] = {}
        for ids in _chunks([c.id for c in calls]):
            rows = s.scalars(select(CallEventRow)
                             .where(CallEventRow.call_id.in_(ids), CallEventRow.type.in_(_TYPES))
                             .order_by(CallEventRow.call_id, CallEventRow.seq))
            for row in rows:
                by_call.setdefault(row.call_id, []).append(row)
    handoffs: list[Handoff] = []
    for call in calls:
        handoffs += _handoffs_of(call, by_call.get(call.id, []), flows)
    return sorted(handoffs, key=lambda h: h.at)


@dataclass(frozen=True)
class Side:
    name: str
    routing: CompiledRouting
    agents: AgentSetup


@dataclass
class SideResult:
    name: str
    results: list[CallResult]

    def stats(self) -> dict[str, Any]:
        waits = sorted(r.wait_s for r in self.results
                       if r.outcome == "answered" and r.wait_s is not None)
        outcomes = Counter(r.outcome for r in self.results)
        total = len(self.results)
        return {
            "handoffs": total,
            "answered": outcomes.get("answered", 0),
            "answer_rate": round(outcomes.get("answered", 0) / total, 3) if total else None,
            "outcomes": dict(sorted(outcomes.items())),
            "mean_wait_s": round(sum(waits) / len(waits), 1) if waits else None,
            "p90_wait_s": round(waits[min(len(waits) - 1, math.ceil(0.9 * len(waits)) - 1)], 1)
            if waits else None,
            "by_target": dict(sorted(Counter(r.target or "none" for r in self.results).items())),
        }


def recorded_stats(handoffs: Sequence[Handoff]) -> dict[str, Any]:
    waits = [h.waited_s for h in handoffs if h.waited_s is not None]
    return {
        "handoffs": len(handoffs),
        "abandoned": sum(1 for h in handoffs if h.abandoned),
        "outcomes": dict(sorted(Counter(h.outcome or "live" for h in handoffs).items())),
        "mean_wait_s": round(sum(waits) / len(waits), 1) if waits else None,
    }


def run_side(side: Side, handoffs: Sequence[Handoff], handle_s: float, answer_after_s: float,
             seed: int) -> SideResult:
    arrivals = [Arrival(h.request, h.at, h.waited_s if h.abandoned else None)
                for h in handoffs]
    results = simulate(side.routing, arrivals, side.agents, handle_s=handle_s,
                       answer_after_s=answer_after_s, seed=seed)
    return SideResult(side.name, results)


@dataclass(frozen=True)
class Change:
    call_id: str
    at: datetime
    caller: str
    before: CallResult
    after: CallResult


def changes(before: SideResult, after: SideResult, handoffs: Sequence[Handoff]
            ) -> list[Change]:
    """Handoffs routed to another target, or ending another way, on the ``after`` side."""
    out: list[Change] = []
    for h, b, a in zip(handoffs, before.results, after.results, strict=True):
        if (b.rule, b.target, b.outcome, b.group) != (a.rule, a.target, a.outcome, a.group):
            out.append(Change(h.request.call_id, h.at, h.request.caller_number, b, a))
    return out
