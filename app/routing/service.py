"""``RoutingService``: presence, queues and offers in one place, driven by the call path.

Synchronous and cheap (no I/O): the event loop calls it directly. Time is always passed in
(``now``), so tests, the simulator and replays run it on their own clock. Live state sits
behind the ``state`` Protocols; the decisions underneath are the pure functions of
``engine``, ``dispatch``, ``presence`` and ``queue``. Every change is published as a typed
event (``app.routing.events``). How the call path drives it: ``app/routing/__init__.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from app.routing import presence as pres
from app.routing.conditions import DEFAULT_TZ
from app.routing.config import Group, digits
from app.routing.dispatch import plan_offers
from app.routing.engine import (
    CompiledRouting,
    GroupIndex,
    RosterState,
    any_logged_in,
    route,
    skip_reason,
    sticky_choice,
)
from app.routing.events import (
    ExitAction,
    OfferChanged,
    OfferState,
    Overflowed,
    QueueExit,
    QueueJoined,
    QueueLeaveReason,
    QueueLeft,
    RoutingDecision,
    RoutingEvent,
)
from app.routing.plan import RoutePlan, RouteRequest, Step
from app.routing.presence import AgentPresence, AwayReason, ChosenStatus, MissOutcome
from app.routing.queue import (
    CALLBACK_EXPIRED,
    FRONT_PRIORITY,
    Announced,
    Offer,
    QueueEntry,
    callback_due,
    callback_expired,
    end_offer,
    estimated_wait_s,
    next_announcement,
    queue_key,
)
from app.routing.state import (
    MemoryOffers,
    MemoryPresence,
    MemoryQueues,
    MemoryStats,
    OfferStore,
    PresenceStore,
    QueueStore,
    StatsStore,
)

OverflowReason = Literal["max_wait", "closed", "empty", "no_answer", "unavailable"]
StepState = Literal["queue", "ring", "final", "closed", "empty", "unavailable"]
_MISS_STATE: dict[MissOutcome, OfferState] = {
    "no_answer": "timed_out", "rejected": "rejected", "busy": "busy",
}
_BLOCKED: dict[StepState, OverflowReason] = {
    "closed": "closed", "empty": "empty", "unavailable": "unavailable",
}


class RoutingError(ValueError):
    """A request the service cannot carry out (unknown agent, call, or offer)."""


@dataclass(frozen=True)
class Ticket:
    """What ``enqueue`` did: the call waits in a queue, or leaves routing (``action``)."""

    call_id: str
    plan: RoutePlan
    status: Literal["queued", "exit"]
    group: str | None = None
    position: int = 0
    estimated_wait_s: float | None = None
    action: ExitAction | None = None
    number: str | None = None


def _newer(p: AgentPresence, stored: AgentPresence | None) -> bool:
    """Whether ``p`` is a later state of the agent than ``stored`` (None: nothing stored)."""
    if stored is None:
        return True
    return p.changed_at is not None and (stored.changed_at is None
                                         or p.changed_at > stored.changed_at)


class RoutingService:
    def __init__(
        self,
        routing: CompiledRouting,
        *,
        presence: PresenceStore | None = None,
        queues: QueueStore | None = None,
        offers: OfferStore | None = None,
        stats: StatsStore | None = None,
        publish: Callable[[RoutingEvent], None] | None = None,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.routing = routing
        self.presence: PresenceStore = presence or MemoryPresence()
        self.queues: QueueStore = queues or MemoryQueues()
        self.offers: OfferStore = offers or MemoryOffers()
        self.stats: StatsStore = stats or MemoryStats()
        self._publish = publish
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:16])

    def reload(self, routing: CompiledRouting) -> None:
        """Use a new configuration; queued calls keep their plans."""
        self.routing = routing

    def _emit(self, events: Iterable[RoutingEvent]) -> None:
        if self._publish is not None:
            for event in events:
                self._publish(event)

    def roster(self) -> RosterState:
        return RosterState(self.presence.snapshot(), dict(self.stats.last_offered()))

    # -- agents ----------------------------------------------------------------------------

    def _agent_presence(self, agent_id: str) -> AgentPresence:
        if agent_id not in self.routing.agents:
            raise RoutingError(f"unknown agent {agent_id!r}")
        return self.presence.get(agent_id) or pres.AgentPresence(agent_id)

    def _put(self, result: pres.Result) -> AgentPresence:
        presence, events = result
        self.presence.put(presence)
        self._emit(events)
        return presence

    def set_status(self, agent_id: str, chosen: ChosenStatus, now: datetime,
                   reason: AwayReason | None = None, forced_by: str | None = None
                   ) -> AgentPresence:
        """The agent's chosen status (or a supervisor's, ``forced_by``); going away or
        offline withdraws pending offers."""
        p = self._agent_presence(agent_id)
        cause = "agent" if forced_by is None else "supervisor"
        after = self._put(pres.set_status(p, chosen, now, reason, cause, forced_by))
        if chosen != "available":
            for offer_id in after.offers:
                self._cancel_offer(offer_id, now)
        return self.presence.get(agent_id) or after

    def login(self, agent_id: str, now: datetime) -> AgentPresence:
        return self.set_status(agent_id, "available", now)

    def logout(self, agent_id: str, now: datetime) -> AgentPresence:
        return self.set_status(agent_id, "offline", now)

    def end_wrap_up(self, agent_id: str, now: datetime) -> AgentPresence:
        return self._put(pres.end_wrap_up(self._agent_presence(agent_id), now))

    # -- decisions and queues ----------------------------------------------------------------

    def plan(self, request: RouteRequest, now: datetime) -> RoutePlan:
        return route(request, self.roster(), self.routing, now)

    def enqueue(self, request: RouteRequest, now: datetime, *, joined_at: datetime | None = None,
                front: bool = False) -> Ticket:
        """Route the call and queue it at its first usable step (or let it leave routing).
        ``joined_at`` keeps an earlier place; ``front`` puts it ahead of everyone (an agent
        dropped mid-call)."""
        if self.queues.get(request.call_id) is not None:
            raise RoutingError(f"call {request.call_id!r} is queued already")
        plan = self.plan(request, now)
        self._emit([RoutingDecision(
            call_id=request.call_id, hotline_number=request.hotline_number, rule=plan.rule,
            source=plan.source, target=plan.target.describe() if plan.target else None,
            reason=plan.reason, steps=[s.summary() for s in plan.steps], at=now,
        )])
        entry = QueueEntry(
            call_id=request.call_id, request=request, plan=plan, step=0,
            joined_at=joined_at or now, step_started_at=now,
            priority=plan.priority + (FRONT_PRIORITY if front else 0),
            seq=self.queues.next_seq(), callback=request.callback,
        )
        return self._advance(entry, 0, now, None)

    def _group_status(self, group: GroupIndex, now: datetime,
                      presence: Mapping[str, AgentPresence] | None = None) -> StepState:
        if group.calendar is not None and group.calendar.status(now) != "open":
            return "closed"
        if group.cfg.overflow_if_empty and not any_logged_in(
                group, presence if presence is not None else self.presence.snapshot(), now):
            return "empty"
        return "queue"

    def _advance(self, entry: QueueEntry, start: int, now: datetime,
                 reason: OverflowReason | None) -> Ticket:
        """Move the entry to the first usable step from ``start`` on."""
        steps = entry.plan.steps
        previous = steps[entry.step].label() if reason is not None and steps else None
        for i in range(start, len(steps)):
            step = steps[i]
            status = self._step_status(step, entry.request, now)
            if previous is not None and reason is not None:
                self._emit([Overflowed(call_id=entry.call_id, from_step=previous,
                                       to_step=step.label(), reason=reason, at=now)])
            blocked = _BLOCKED.get(status)
            # A callback task waits for its group even when it is closed or nobody is in.
            if blocked is not None and not (entry.callback and step.kind == "group"
                                            and blocked != "unavailable"):
                previous, reason = step.label(), blocked
                continue
            if step.kind in ("group", "agent"):
                queued = replace(entry, step=i, step_started_at=now, tried=(), offers=())
                self.queues.put(queued)
                position, wait_s = self.position(entry.call_id, now)
                self._emit([QueueJoined(
                    call_id=entry.call_id, group=step.group or f"agent:{step.agent}",
                    position=position, estimated_wait_s=wait_s, priority=queued.priority,
                    callback=queued.callback, at=now,
                )])
                return Ticket(entry.call_id, entry.plan, "queued", step.group, position,
                              wait_s)
            if entry.callback and step.kind in ("callback", "voicemail"):
                continue  # a callback task is the callback already: find it an agent
            action: ExitAction = ("dial_number" if step.kind == "number" else
                                  "voicemail" if step.kind == "voicemail" else "callback")
            return self._exit(entry, action, now, step.number, f"plan step {step.label()}")
        why = "no step left" if reason is None else f"no step left after {reason}"
        return self._exit(entry, "no_route", now, None, f"{entry.plan.reason}; {why}")

    def _step_status(self, step: Step, request: RouteRequest, now: datetime) -> StepState:
        if step.kind == "group":
            group = self.routing.groups.get(step.group or "")
            return "closed" if group is None else self._group_status(group, now)
        if step.kind == "agent":
            agent = self.routing.agents.get(step.agent or "")
            why = skip_reason(step.agent or "", agent, self.presence.get(step.agent or ""),
                              None, request, now)
            return "unavailable" if why is not None and why[0] in (
                "offline", "away", "unknown_agent") else "ring"
        return "final"

    def _exit(self, entry: QueueEntry, action: ExitAction, now: datetime,
              number: str | None, reason: str) -> Ticket:
        self.queues.remove(entry.call_id)
        self._emit([QueueExit(call_id=entry.call_id, action=action, number=number,
                              reason=reason, group=entry.group, joined_at=entry.joined_at,
                              at=now)])
        return Ticket(entry.call_id, entry.plan, "exit", entry.group, action=action,
                      number=number)

    def leave(self, call_id: str, now: datetime, reason: QueueLeaveReason = "abandoned"
              ) -> QueueEntry | None:
        """The call leaves its queue (caller hung up, or the bot took it back); pending
        offers are cancelled. None when it was not queued."""
        entry = self.queues.remove(call_id)
        if entry is None:
            return None
        for offer_id in entry.offers:
            self._cancel_offer(offer_id, now, requeue=False)
        self._left(entry, reason, now)
        return entry

    def abandon(self, call_id: str, now: datetime) -> QueueEntry | None:
        return self.leave(call_id, now, "abandoned")

    def release_calls(self, call_ids: Iterable[str], now: datetime
                      ) -> tuple[list[str], list[str]]:
        """Calls that are gone with the node that held them (lost): each leaves its queue
        (abandoned; its offers cancelled) and every agent on one of them ends that call (no
        wrap-up: the group is not known). Returns (calls that left a queue, agents freed)."""
        left: list[str] = []
        freed: list[str] = []
        for call_id in call_ids:
            if self.leave(call_id, now, "abandoned") is not None:
                left.append(call_id)
            for agent_id, presence in list(self.presence.snapshot().items()):
                if call_id in presence.calls:
                    self.call_ended(agent_id, call_id, 0.0, now)
                    freed.append(agent_id)
        return left, freed

    def _left(self, entry: QueueEntry, reason: QueueLeaveReason, now: datetime) -> None:
        self._emit([QueueLeft(call_id=entry.call_id, group=entry.group or "", reason=reason,
                              waited_s=round((now - entry.joined_at).total_seconds(), 3),
                              at=now)])

    def _entries_of(self, group: str | None) -> list[QueueEntry]:
        cfg = self.routing.groups[group].cfg if group in self.routing.groups else None
        same = [e for e in self.queues.waiting() if e.group == group]
        return sorted(same, key=lambda e: queue_key(e, cfg))

    def position(self, call_id: str, now: datetime) -> tuple[int, float | None]:
        """1-based place in its group's queue and the estimated wait (0, None: not queued)."""
        entry = self.queues.get(call_id)
        if entry is None:
            return 0, None
        ordered = self._entries_of(entry.group)
        position = next(i for i, e in enumerate(ordered, 1) if e.call_id == call_id)
        group = self.routing.groups.get(entry.group or "")
        if group is None:
            return position, None
        staffed = sum(1 for a in group.members if (p := self.presence.get(a)) is not None
                      and pres.effective_state(p, now) not in ("offline", "away"))
        wait_s = estimated_wait_s(position, staffed, self.stats.handle_times(group.id),
                                  group.cfg.default_handle_s)
        return position, wait_s

    def announcement(self, call_id: str, now: datetime) -> Announced | None:
        """Position and wait to tell the caller now, only when they improved (else None)."""
        entry = self.queues.get(call_id)
        if entry is None:
            return None
        position, wait_s = self.position(call_id, now)
        said = next_announcement(entry.announced, position, wait_s)
        if said is not None:
            self.queues.put(replace(entry, announced=said))
        return said

    def callback_due(self, call_id: str, now: datetime) -> bool:
        """True once, when the caller should be offered a callback (wait over threshold)."""
        entry = self.queues.get(call_id)
        if entry is None:
            return False
        group = self.routing.groups.get(entry.group or "")
        _, wait_s = self.position(call_id, now)
        if not callback_due(entry, group.cfg if group else None, wait_s, now):
            return False
        self.queues.put(replace(entry, callback_offered=True))
        return True

    def request_callback(self, call_id: str, number: str, now: datetime) -> QueueEntry:
        """The caller hangs up to be called back: the entry stays, keeping its place."""
        entry = self.queues.get(call_id)
        if entry is None:
            raise RoutingError(f"call {call_id!r} is not queued")
        for offer_id in entry.offers:
            self._cancel_offer(offer_id, now, requeue=False)
        entry = replace(self.queues.get(call_id) or entry, offers=(), callback=True,
                        callback_number=number)
        self.queues.put(entry)
        self._left(entry, "callback", now)
        position, wait_s = self.position(call_id, now)
        self._emit([QueueJoined(call_id=call_id, group=entry.group or "", position=position,
                                estimated_wait_s=wait_s, priority=entry.priority,
                                callback=True, at=now)])
        return entry

    def enqueue_callback(self, request: RouteRequest, number: str, joined_at: datetime,
                         now: datetime) -> Ticket:
        """A callback task for a caller who left routing (a ``callback`` exit): routed
        again, queued with the caller's original join time."""
        ticket = self.enqueue(request.model_copy(update={"callback": True}), now,
                              joined_at=joined_at)
        entry = self.queues.get(request.call_id)
        if entry is not None:
            self.queues.put(replace(entry, callback=True, callback_number=number))
        return ticket

    def restore(self, presences: Iterable[AgentPresence], entries: Iterable[QueueEntry]
                ) -> tuple[list[str], list[str]]:
        """The shared state was lost (Redis restarted empty): put back what a node still
        knows (its desks' agents, its waiting callers, in their old order and with their
        join times). A queue entry only where none is stored yet; an agent also over an
        older stored value (several nodes restore the same agent: the latest change wins).
        Pending offers are not restored: their ringing ends on its own. Returns (agents,
        calls) put back."""
        agents: list[str] = []
        calls: list[str] = []
        for p in presences:
            if _newer(p, self.presence.get(p.agent_id)):
                system = "idle" if p.system == "ringing" and not p.calls else p.system
                self.presence.put(replace(p, offers=(), system=system))
                agents.append(p.agent_id)
        for entry in sorted(entries, key=lambda e: e.seq):
            if self.queues.get(entry.call_id) is None:
                self.queues.put(replace(entry, offers=(), seq=self.queues.next_seq()))
                calls.append(entry.call_id)
        return agents, calls

    # -- offers ----------------------------------------------------------------------------

    def dispatch(self, now: datetime) -> list[Offer]:
        """Offer waiting calls to free agents: best call first; no agent gets more offers
        than their free capacity. Returns the new offers (ring these devices)."""
        plans = plan_offers(self.routing, self.queues.waiting(), self.roster(), now,
                            lambda entry: self.sticky_for(entry, now))
        made: list[Offer] = []
        for plan in plans:
            entry = self.queues.get(plan.call_id)
            if entry is not None and plan.new_round:
                self.queues.put(replace(entry, tried=()))
            for agent_id in plan.agents:
                made.append(self._make_offer(plan.call_id, agent_id, plan.group, now))
        return made

    def _make_offer(self, call_id: str, agent_id: str, group: str | None, now: datetime
                    ) -> Offer:
        entry = self.queues.get(call_id)
        agent = self.routing.agents[agent_id]
        if entry is None:
            raise RoutingError(f"call {call_id!r} is not queued")
        step = entry.plan.steps[entry.step]
        ring_s = step.ring_timeout_s or self.routing.config.offers.agent_ring_timeout_s
        offer = Offer(id=self._new_id(), call_id=call_id, agent_id=agent_id, group=group,
                      devices=tuple(d.address for d in agent.devices), created_at=now,
                      expires_at=now + timedelta(seconds=ring_s))
        self._put(pres.offer_made(self._agent_presence(agent_id), offer.id, agent.max_calls,
                                  now))
        self.offers.put(offer)
        self.queues.put(replace(entry, offers=(*entry.offers, offer.id),
                                tried=(*entry.tried, agent_id)))
        if group is not None:
            self.stats.set_last_offered(group, agent_id)
        self._emit([_offer_event(offer, "pending", now, ring_s)])
        return offer

    def _pending(self, offer_id: str) -> Offer:
        offer = self.offers.get(offer_id)
        if offer is None:
            raise RoutingError(f"unknown offer {offer_id!r}")
        return offer

    def accept(self, offer_id: str, now: datetime) -> Offer:
        """The agent answered: the call leaves the queue; other offers of it are cancelled."""
        ended = end_offer(self._pending(offer_id), "accepted", now)
        self.offers.remove(offer_id)
        self._put(pres.offer_accepted(self._agent_presence(ended.agent_id), offer_id,
                                      ended.call_id, now))
        self._emit([_offer_event(ended, "accepted", now)])
        entry = self.queues.remove(ended.call_id)
        if entry is not None:
            for other in entry.offers:
                if other != offer_id:
                    self._cancel_offer(other, now, requeue=False)
            self._left(entry, "answered", now)
        return ended

    def reject(self, offer_id: str, now: datetime) -> Offer:
        return self._missed(offer_id, "rejected", now)

    def no_answer(self, offer_id: str, now: datetime) -> Offer:
        return self._missed(offer_id, "no_answer", now)

    def device_busy(self, offer_id: str, now: datetime) -> Offer:
        return self._missed(offer_id, "busy", now)

    def _missed(self, offer_id: str, outcome: MissOutcome, now: datetime) -> Offer:
        state = _MISS_STATE[outcome]
        ended = end_offer(self._pending(offer_id), state, now)
        self.offers.remove(offer_id)
        policy = self.routing.config.offers
        delay_s = {"no_answer": policy.no_answer_delay_s, "rejected": policy.reject_delay_s,
                   "busy": policy.busy_delay_s}[outcome]
        self._put(pres.offer_missed(self._agent_presence(ended.agent_id), offer_id, outcome,
                                    delay_s, policy.max_missed_offers, now))
        self._emit([_offer_event(ended, state, now)])
        entry = self.queues.get(ended.call_id)
        if entry is not None:
            entry = replace(entry, offers=tuple(o for o in entry.offers if o != offer_id))
            self.queues.put(entry)
            if entry.plan.steps[entry.step].kind == "agent" and not entry.offers:
                self._left(entry, "overflow", now)
                self._advance(entry, entry.step + 1, now, "no_answer")
        return ended

    def _cancel_offer(self, offer_id: str, now: datetime, requeue: bool = True) -> None:
        offer = self.offers.get(offer_id)
        if offer is None or offer.state != "pending":
            return
        ended = end_offer(offer, "cancelled", now)
        self.offers.remove(offer_id)
        p = self.presence.get(offer.agent_id)
        if p is not None and offer_id in p.offers:
            self._put(pres.offer_cancelled(p, offer_id, now))
        self._emit([_offer_event(ended, "cancelled", now)])
        entry = self.queues.get(offer.call_id)
        if requeue and entry is not None:
            self.queues.put(replace(entry, offers=tuple(o for o in entry.offers
                                                        if o != offer_id)))

    def call_ended(self, agent_id: str, call_id: str, talk_s: float, now: datetime,
                   group: str | None = None) -> AgentPresence:
        """The agent's call is over: wrap-up for the group's ``wrap_up_s``, handle time
        recorded for the group's wait estimate."""
        index = self.routing.groups.get(group or "")
        wrap_s = index.cfg.wrap_up_s if index else 0.0
        today = now.astimezone(ZoneInfo(DEFAULT_TZ)).date()
        after = self._put(pres.call_ended(self._agent_presence(agent_id), call_id, talk_s,
                                          wrap_s, now, today))
        if index is not None:
            self.stats.add_handle_time(index.id, max(0.0, talk_s) + wrap_s)
        return after

    # -- timers ----------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """Run the timers due at ``now``: wrap-ups, ring timeouts, max waits, closing hours
        and emptied groups (overflow)."""
        for p in self.presence.snapshot().values():
            self._put(pres.tick(p, now))
        for offer in list(self.offers.pending()):
            if now >= offer.expires_at:
                self.no_answer(offer.id, now)
        presence = self.presence.snapshot()
        for entry in list(self.queues.waiting()):
            current = self.queues.get(entry.call_id)
            if current is not None and current.callback:
                self._expire_callback(current, now)
                continue
            if current is None:
                continue
            step = current.plan.steps[current.step]
            waited_s = (now - current.step_started_at).total_seconds()
            if step.kind == "agent" and not current.offers \
                    and waited_s >= (step.ring_timeout_s or 0):
                self._overflow(current, "unavailable", now)  # the agent never became free
                continue
            if step.kind != "group":
                continue
            group = self.routing.groups.get(step.group or "")
            reason: OverflowReason | None = None
            if group is None:
                reason = "unavailable"
            elif waited_s >= group.cfg.max_wait_s:
                reason = "max_wait"
            else:
                reason = _BLOCKED.get(self._group_status(group, now, presence))
            if reason is not None:
                self._overflow(current, reason, now)

    def callback_expired(self, group: str | None, joined_at: datetime, now: datetime) -> bool:
        index = self.routing.groups.get(group or "")
        return callback_expired(index.cfg if index else None, joined_at, now)

    def _expire_callback(self, entry: QueueEntry, now: datetime) -> None:
        """A callback task past its group's ``callback_expire_after_s`` leaves routing."""
        if not self.callback_expired(entry.group, entry.joined_at, now):
            return
        for offer_id in entry.offers:
            self._cancel_offer(offer_id, now, requeue=False)
        self._exit(replace(entry, offers=()), "no_route", now, None, CALLBACK_EXPIRED)

    def _overflow(self, entry: QueueEntry, reason: OverflowReason, now: datetime) -> None:
        for offer_id in entry.offers:
            self._cancel_offer(offer_id, now, requeue=False)
        entry = replace(entry, offers=())
        self._left(entry, "overflow", now)
        self._advance(entry, entry.step + 1, now, reason)

    def next_deadline(self, after: datetime) -> datetime | None:
        """The earliest time after ``after`` when ``tick``/``dispatch`` has something to do
        (a ring timeout, a wrap-up or delay ending, a max wait); None: nothing pending."""
        times: list[datetime] = [o.expires_at for o in self.offers.pending()]
        for p in self.presence.snapshot().values():
            if p.system == "wrap_up" and p.wrap_up_until is not None:
                times.append(p.wrap_up_until)
            if p.not_before is not None:
                times.append(p.not_before)
        for e in self.queues.waiting():
            step = e.plan.steps[e.step]
            wait_s = (step.max_wait_s if step.kind == "group" else step.ring_timeout_s) or 0.0
            if not e.callback:
                times.append(e.step_started_at + timedelta(seconds=wait_s))
            else:
                group = self.routing.groups.get(e.group or "")
                expire_s = (group.cfg if group else Group()).callback_expire_after_s
                times.append(e.joined_at + timedelta(seconds=expire_s))
        future = [t for t in times if t > after]
        return min(future) if future else None

    def sticky_for(self, entry: QueueEntry, now: datetime) -> tuple[str, str] | None:
        if entry.step != entry.plan.first_queue():
            return None
        index = self.routing.hotlines.get(digits(entry.request.hotline_number))
        return sticky_choice(index.cfg if index else None, entry.request, now)


def _offer_event(offer: Offer, state: OfferState, now: datetime, ring_s: float = 0.0
                 ) -> OfferChanged:
    return OfferChanged(offer_id=offer.id, call_id=offer.call_id, agent_id=offer.agent_id,
                        group=offer.group, state=state, devices=list(offer.devices),
                        ring_timeout_s=ring_s, at=now)
