"""Branch conditions: slots, business calendar, caller region, sentiment, counters."""

from __future__ import annotations

import re

from app.flows.runtime import FlowState
from app.flows.schema import Condition, Flow


def holds(cond: Condition, flow: Flow, state: FlowState) -> bool:
    """Every field given in ``cond`` must hold."""
    checks = [
        _slot(cond, state),
        _calendar(cond, flow, state),
        _region(cond, state),
        _sentiment(cond, state),
        cond.intent is None or state.last_intent == cond.intent,
        cond.locale is None or state.locale == cond.locale,
        _counter(cond, state),
    ]
    return all(checks)


def _slot(cond: Condition, state: FlowState) -> bool:
    if cond.slot is None:
        return True
    value = state.slots.get(cond.slot)
    if cond.exists is not None and (value is not None and value != "") != cond.exists:
        return False
    if cond.equals is not None and value != cond.equals:
        return False
    if cond.one_of is not None and value not in cond.one_of:
        return False
    if cond.matches is not None and (value is None or not re.fullmatch(cond.matches, value)):
        return False
    no_test = cond.exists is None and cond.equals is None and cond.one_of is None
    if no_test and cond.matches is None:
        return bool(value)
    return True


def _calendar(cond: Condition, flow: Flow, state: FlowState) -> bool:
    if cond.calendar is None:
        return True
    if flow.calendar is None:
        return cond.calendar == "open"
    return flow.calendar.status(state.now) == cond.calendar


def _region(cond: Condition, state: FlowState) -> bool:
    if cond.region is None:
        return True
    names = [n for n in state.caller_region.values() if n]
    return any(want in name or name in want for want in cond.region for name in names)


def _sentiment(cond: Condition, state: FlowState) -> bool:
    if cond.sentiment is not None and state.sentiment_label != cond.sentiment:
        return False
    if cond.sentiment_below is not None:
        score = state.sentiment_score
        return score is not None and score < cond.sentiment_below
    return True


def _counter(cond: Condition, state: FlowState) -> bool:
    if cond.gte is None:
        return True
    if cond.counter is not None:
        return state.counters.get(cond.counter, 0) >= cond.gte
    if cond.visits is not None:
        return state.visits.get(cond.visits, 0) >= cond.gte
    return True
