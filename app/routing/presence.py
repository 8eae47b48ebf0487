"""Agent presence: the agent's chosen status, kept apart from the system's state.

``chosen`` is what the agent picked on the desk: offline, available, or away with a reason
(break, meal, training, outbound; ``missed_offers`` when the system set it after N unanswered
offers). ``system`` is what the routing engine knows: idle, ringing (an offer is pending),
on_call, wrap_up (until ``wrap_up_until``, then idle by itself). What the desk shows is
``effective_state``: offline > ringing/on_call/wrap_up > away > available, so an agent who
goes "away" during a call finishes the call and wrap-up first.

Every transition is a pure function ``(presence, ..., now) -> (presence, events)``; invalid
ones raise ``PresenceError`` (a ``ValueError`` with the reason). State values are frozen
slotted dataclasses: the decision reads thousands of them per second.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

from app.routing.events import AgentStateChanged

ChosenStatus = Literal["offline", "available", "away"]
AwayReason = Literal["break", "meal", "training", "outbound", "missed_offers", "other"]
AWAY_REASONS: tuple[AwayReason, ...] = (
    "break", "meal", "training", "outbound", "missed_offers", "other",
)
SystemState = Literal["idle", "ringing", "on_call", "wrap_up"]
AgentState = Literal["offline", "available", "ringing", "on_call", "wrap_up", "away"]
MissOutcome = Literal["no_answer", "rejected", "busy"]


class PresenceError(ValueError):
    """A transition that is not allowed in the agent's current state."""


@dataclass(frozen=True, slots=True)
class AgentPresence:
    agent_id: str
    chosen: ChosenStatus = "offline"
    away_reason: AwayReason | None = None
    system: SystemState = "idle"
    calls: tuple[str, ...] = ()
    offers: tuple[str, ...] = ()
    wrap_up_until: datetime | None = None
    not_before: datetime | None = None  # no offer before this (no-answer/reject/busy delay)
    idle_since: datetime | None = None  # became free for a call (longest idle)
    missed_in_row: int = 0
    calls_today: int = 0
    talk_s_today: float = 0.0
    day: date | None = None  # the day the counters are for (agent's local day)
    changed_at: datetime | None = None

    def state(self, now: datetime | None = None) -> AgentState:
        return effective_state(self, now)


def effective_state(p: AgentPresence, now: datetime | None = None) -> AgentState:
    if p.chosen == "offline" and not p.calls and not p.offers:
        return "offline"
    if p.calls:
        return "on_call"
    if p.offers:
        return "ringing"
    if p.system == "wrap_up" and (now is None or p.wrap_up_until is None
                                  or now < p.wrap_up_until):
        return "wrap_up"
    if p.chosen == "offline":
        return "offline"
    return "away" if p.chosen == "away" else "available"


def idle_since(p: AgentPresence, now: datetime) -> datetime | None:
    """When the agent became free (a wrap-up that ran out counts from its end)."""
    if p.system == "wrap_up" and p.wrap_up_until is not None and now >= p.wrap_up_until:
        return p.wrap_up_until
    return p.idle_since


def _changed(before: AgentPresence, after: AgentPresence, now: datetime, cause: str,
             forced_by: str | None = None) -> list[AgentStateChanged]:
    old, new = effective_state(before), effective_state(after, now)
    if (old, before.away_reason) == (new, after.away_reason) and before.chosen == after.chosen:
        return []
    return [AgentStateChanged(
        agent_id=after.agent_id, state=new, previous=old, chosen=after.chosen,
        away_reason=after.away_reason, system=after.system, cause=cause, at=now,
        forced_by=forced_by,
    )]


Result = tuple[AgentPresence, list[AgentStateChanged]]


def _free(p: AgentPresence, now: datetime) -> AgentPresence:
    """Back to idle with nothing pending: idle since now."""
    return replace(p, system="idle", wrap_up_until=None, idle_since=now, changed_at=now)


def set_status(p: AgentPresence, chosen: ChosenStatus, now: datetime,
               reason: AwayReason | None = None, cause: str = "agent",
               forced_by: str | None = None) -> Result:
    """The agent (or a supervisor) picks a status; system state is untouched."""
    if chosen == "away" and reason is None:
        raise PresenceError(f"agent {p.agent_id!r}: away needs a reason "
                            f"({', '.join(AWAY_REASONS)})")
    if chosen != "away" and reason is not None:
        raise PresenceError(f"agent {p.agent_id!r}: a reason goes with away, not {chosen}")
    after = replace(p, chosen=chosen, away_reason=reason, changed_at=now)
    if chosen == "available":
        after = replace(after, missed_in_row=0, not_before=None)
        if p.chosen != "available" and after.system == "idle":
            after = replace(after, idle_since=now)
    return after, _changed(p, after, now, cause, forced_by)


def offer_made(p: AgentPresence, offer_id: str, max_calls: int, now: datetime) -> Result:
    if p.chosen != "available":
        raise PresenceError(f"agent {p.agent_id!r} is {p.chosen}: no offers")
    if len(p.calls) + len(p.offers) >= max_calls:
        raise PresenceError(f"agent {p.agent_id!r} is at capacity ({max_calls} call(s))")
    if p.not_before is not None and now < p.not_before:
        raise PresenceError(f"agent {p.agent_id!r} takes no offer before "
                            f"{p.not_before.isoformat()}")
    after = replace(p, offers=(*p.offers, offer_id),
                    system="on_call" if p.calls else "ringing", changed_at=now)
    return after, _changed(p, after, now, "offer")


def _drop_offer(p: AgentPresence, offer_id: str) -> AgentPresence:
    if offer_id not in p.offers:
        raise PresenceError(f"agent {p.agent_id!r} has no pending offer {offer_id!r}")
    return replace(p, offers=tuple(o for o in p.offers if o != offer_id))


def offer_accepted(p: AgentPresence, offer_id: str, call_id: str, now: datetime) -> Result:
    after = replace(_drop_offer(p, offer_id), calls=(*p.calls, call_id), system="on_call",
                    missed_in_row=0, wrap_up_until=None, changed_at=now)
    return after, _changed(p, after, now, "answered")


def offer_missed(p: AgentPresence, offer_id: str, outcome: MissOutcome, delay_s: float,
                 max_missed: int, now: datetime) -> Result:
    """No answer, rejected, or the device was busy: no offer for ``delay_s``; after
    ``max_missed`` unanswered offers in a row the agent is set away (missed_offers)."""
    after = _drop_offer(p, offer_id)
    missed = after.missed_in_row + (1 if outcome == "no_answer" else 0)
    after = replace(after, missed_in_row=missed, changed_at=now,
                    not_before=now + timedelta(seconds=delay_s) if delay_s > 0 else None)
    if not after.offers and not after.calls:
        after = replace(after, system="idle")
    cause: str = outcome
    if outcome == "no_answer" and missed >= max_missed and after.chosen == "available":
        after = replace(after, chosen="away", away_reason="missed_offers")
        cause = f"missed {missed} offers in a row"
    return after, _changed(p, after, now, cause)


def offer_cancelled(p: AgentPresence, offer_id: str, now: datetime) -> Result:
    """The caller hung up, or another agent answered first (ring-all): no penalty."""
    after = replace(_drop_offer(p, offer_id), changed_at=now)
    if not after.offers and not after.calls:
        after = replace(after, system="idle")
    return after, _changed(p, after, now, "offer_cancelled")


def call_ended(p: AgentPresence, call_id: str, talk_s: float, wrap_up_s: float,
               now: datetime, today: date | None = None) -> Result:
    """The call is over: counters for today, then wrap-up (auto timer) or idle."""
    if call_id not in p.calls:
        raise PresenceError(f"agent {p.agent_id!r} is not on call {call_id!r}")
    calls_today, talk_today = p.calls_today, p.talk_s_today
    if today is not None and p.day != today:
        calls_today, talk_today = 0, 0.0
    after = replace(p, calls=tuple(c for c in p.calls if c != call_id),
                    calls_today=calls_today + 1, talk_s_today=talk_today + max(0.0, talk_s),
                    day=today if today is not None else p.day, changed_at=now)
    if not after.calls and not after.offers:
        if wrap_up_s > 0:
            after = replace(after, system="wrap_up",
                            wrap_up_until=now + timedelta(seconds=wrap_up_s))
        else:
            after = _free(after, now)
    return after, _changed(p, after, now, "call_ended")


def end_wrap_up(p: AgentPresence, now: datetime, cause: str = "agent") -> Result:
    """The agent is ready before the timer ends (or the timer ended: ``tick``)."""
    if p.system != "wrap_up":
        raise PresenceError(f"agent {p.agent_id!r} is not in wrap-up")
    after = _free(p, now)
    return after, _changed(p, after, now, cause)


def tick(p: AgentPresence, now: datetime) -> Result:
    """Timers: wrap-up ends by itself at ``wrap_up_until``."""
    if p.system == "wrap_up" and p.wrap_up_until is not None and now >= p.wrap_up_until:
        after = _free(p, p.wrap_up_until)
        return after, _changed(p, after, now, "wrap_up_timer")
    return p, []
