"""Which waiting calls go to which free agents now: a pure function of queues and presence.

Calls are served best first (``queue.queue_key``: group priority, caller priority, joined
first). Each call gets its step's best eligible agent (every eligible agent for ring-all)
among the agents with free capacity; an agent's capacity is ``max_calls`` minus the calls
and offers they have, and every offer planned here uses one up, so no agent is offered more
calls than they can take. A call whose every eligible agent was tried in this step starts a
new round (sequential and round-robin groups ring their members again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.routing.engine import CompiledRouting, RosterState, rank_group, skip_reason
from app.routing.plan import RouteRequest
from app.routing.queue import QueueEntry, queue_key

_ANY_CALL = RouteRequest(call_id="-", hotline_number="0")


@dataclass(frozen=True, slots=True)
class OfferPlan:
    call_id: str
    agents: tuple[str, ...]
    group: str | None
    new_round: bool = False  # forget who was tried in this step first


def free_capacity(routing: CompiledRouting, roster: RosterState, now: datetime
                  ) -> dict[str, int]:
    """Agents who may get an offer now, with how many more calls each can take."""
    free: dict[str, int] = {}
    for aid, p in roster.presence.items():
        agent = routing.agents.get(aid)
        if agent is None or skip_reason(aid, agent, p, None, _ANY_CALL, now) is not None:
            continue
        room = agent.max_calls - len(p.calls) - len(p.offers)
        if room > 0:
            free[aid] = room
    return free


def _group_picks(routing: CompiledRouting, roster: RosterState, entry: QueueEntry,
                 free: dict[str, int], now: datetime,
                 sticky_of: Callable[[QueueEntry], tuple[str, str] | None]
                 ) -> tuple[list[str], bool]:
    group = routing.groups.get(entry.group or "")
    if group is None or not any(a in free for a in group.members):
        return [], False
    sticky = sticky_of(entry)
    busy = frozenset(a for a in group.members if a not in free)
    request = entry.request.model_copy(update={"tried": entry.tried})
    ranked, skipped = rank_group(routing, roster, request, group, now, sticky, busy)
    new_round = False
    if not ranked and any(reason == "already_tried" for _, reason, _ in skipped):
        request = entry.request.model_copy(update={"tried": ()})
        ranked, _ = rank_group(routing, roster, request, group, now, sticky, busy)
        new_round = True
    agents = [a for a, _ in ranked]
    return (agents if group.cfg.strategy == "ring_all" else agents[:1]), new_round


def plan_offers(routing: CompiledRouting, entries: Sequence[QueueEntry], roster: RosterState,
                now: datetime,
                sticky: Callable[[QueueEntry], tuple[str, str] | None] = lambda e: None,
                ) -> list[OfferPlan]:
    free = free_capacity(routing, roster, now)
    if not free:
        return []

    def key(entry: QueueEntry) -> tuple[int, int, float, int]:
        group = routing.groups.get(entry.group or "")
        return queue_key(entry, group.cfg if group else None)

    plans: list[OfferPlan] = []
    for entry in sorted(entries, key=key):
        if not free:
            break
        if entry.offers or not entry.plan.steps:
            continue
        step = entry.plan.steps[entry.step]
        new_round = False
        if step.kind == "agent":
            agent = step.agent or ""
            picks = [agent] if agent in free and agent not in entry.tried else []
        elif step.kind == "group":
            picks, new_round = _group_picks(routing, roster, entry, free, now, sticky)
        else:
            continue
        for aid in picks:
            free[aid] -= 1
            if free[aid] <= 0:
                del free[aid]
        if picks:
            plans.append(OfferPlan(entry.call_id, tuple(picks), step.group,
                                   new_round))
    return plans
