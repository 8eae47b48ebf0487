"""A discrete-event simulation of the routing service on a virtual clock.

Calls arrive (``Arrival``: a request, a time, how long the caller will wait), the real
``RoutingService`` queues and offers them, simulated agents answer after ``answer_after_s``
(or let it ring, with ``no_answer_rate``), talk for the call's handle time, wrap up, and so
on until every call is answered or has left routing. ``hotline routing replay`` runs past
handoffs through it under two configurations; ``bench/routing_decision.py`` measures queue
fairness with it. Deterministic for a given seed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from app.routing.engine import CompiledRouting
from app.routing.events import QueueExit, QueueLeft, RoutingDecision, RoutingEvent
from app.routing.plan import RouteRequest
from app.routing.presence import AwayReason
from app.routing.service import RoutingService
from app.routing.state import QueueStore

Outcome = Literal["answered", "abandoned", "voicemail", "callback", "dial_number", "no_route",
                  "waiting"]


@dataclass(frozen=True)
class Arrival:
    request: RouteRequest
    at: datetime
    patience_s: float | None = None  # hangs up after waiting this long (None: waits)


@dataclass
class CallResult:
    call_id: str
    at: datetime
    rule: str | None = None
    target: str | None = None
    outcome: Outcome = "waiting"
    wait_s: float | None = None
    agent: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class AgentSetup:
    """Who is logged in at the start, and in what status."""

    available: tuple[str, ...]
    away: dict[str, AwayReason] = field(default_factory=dict)


@dataclass
class _Sim:
    svc: RoutingService
    handle_s: Callable[[str], float]
    answer_after_s: float
    no_answer_rate: float
    rng: random.Random
    results: dict[str, CallResult]
    heap: list[tuple[datetime, int, str, str]] = field(default_factory=list)
    seq: int = 0
    offer_group: dict[str, str | None] = field(default_factory=dict)

    def push(self, at: datetime, kind: str, key: str) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, key))

    def on_event(self, event: RoutingEvent) -> None:
        result = self.results.get(getattr(event, "call_id", ""))
        if result is None:
            return
        if isinstance(event, RoutingDecision):
            result.rule, result.target = event.rule, event.target
        elif isinstance(event, QueueLeft) and event.reason in ("answered", "abandoned"):
            result.outcome, result.wait_s = event.reason, event.waited_s
            result.group = event.group
        elif isinstance(event, QueueExit):
            result.outcome = event.action
            result.wait_s = (event.at - result.at).total_seconds()
            result.group = event.group

    def handle(self, now: datetime, kind: str, key: str, arrivals: dict[str, Arrival]) -> None:
        svc = self.svc
        if kind == "arrive":
            arrival = arrivals[key]
            svc.enqueue(arrival.request, now)
            if arrival.patience_s is not None:
                self.push(now + timedelta(seconds=arrival.patience_s), "patience", key)
        elif kind == "patience":
            entry = svc.queues.get(key)
            if entry is not None and not entry.callback:
                svc.abandon(key, now)
        elif kind == "answer":
            offer = svc.offers.get(key)
            if offer is not None and offer.state == "pending" and now < offer.expires_at:
                svc.accept(key, now)
                self.results[offer.call_id].agent = offer.agent_id
                talk_s = self.handle_s(offer.call_id)
                self.push(now + timedelta(seconds=talk_s), "hangup",
                          f"{offer.agent_id}|{offer.call_id}|{offer.group or ''}|{talk_s}")
        elif kind == "hangup":
            agent_id, call_id, group, talked = key.split("|")
            svc.call_ended(agent_id, call_id, float(talked), now, group or None)

    def step(self, now: datetime) -> None:
        self.svc.tick(now)
        for offer in self.svc.dispatch(now):
            if self.rng.random() >= self.no_answer_rate:
                self.push(now + timedelta(seconds=self.answer_after_s), "answer", offer.id)


def simulate(
    routing: CompiledRouting,
    arrivals: Iterable[Arrival],
    agents: AgentSetup,
    *,
    handle_s: float | Callable[[str], float] = 180.0,
    answer_after_s: float = 3.0,
    no_answer_rate: float = 0.0,
    seed: int = 0,
    queues: QueueStore | None = None,
    max_events: int = 1_000_000,
) -> list[CallResult]:
    """Run every arrival to its end; results in arrival order."""
    ordered = sorted(arrivals, key=lambda a: a.at)
    by_id = {a.request.call_id: a for a in ordered}
    results = {a.request.call_id: CallResult(a.request.call_id, a.at) for a in ordered}
    counter = iter(range(1, 10**9))
    sim = _Sim(
        svc=RoutingService(routing, queues=queues, new_id=lambda: f"o{next(counter)}"),
        handle_s=handle_s if callable(handle_s) else (lambda _c: float(handle_s)),
        answer_after_s=answer_after_s, no_answer_rate=no_answer_rate,
        rng=random.Random(seed), results=results,
    )
    sim.svc._publish = sim.on_event
    if not ordered:
        return []
    start = ordered[0].at
    for aid in agents.available:
        sim.svc.login(aid, start)
    for aid, reason in agents.away.items():
        sim.svc.set_status(aid, "away", start, reason)
    for a in ordered:
        sim.push(a.at, "arrive", a.request.call_id)
    now = start
    for _ in range(max_events):
        deadline = sim.svc.next_deadline(now)
        if not sim.heap and deadline is None:
            break
        now = min(t for t in (deadline, sim.heap[0][0] if sim.heap else None) if t)
        while sim.heap and sim.heap[0][0] <= now:
            _, _, kind, key = heapq.heappop(sim.heap)
            sim.handle(now, kind, key, by_id)
        sim.step(now)
    return [results[a.request.call_id] for a in ordered]
