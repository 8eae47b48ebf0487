"""The plan: candidates and the reason for every skip, overflow chains, agent, number and
split targets, sticky routing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from app.routing.engine import route
from app.routing.plan import RoutePlan
from app.routing.presence import AgentPresence
from tests.helpers.routing import (
    ALWAYS_OPEN,
    MONDAY_10,
    agent,
    available,
    compiled,
    config,
    request,
    roster,
)

OFFICE = {"timezone": "Asia/Shanghai",
          "hours": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}


def test_every_member_is_a_candidate_or_skipped_with_its_reason() -> None:
    cfg = config(
        {"ok": agent(), "busy": agent(), "away": agent(), "ringing": agent(), "wrap": agent(),
         "late": agent(), "off": agent(), "nolang": agent(("en",)),
         "noskill": {"name": "N", "languages": ["zh"], "skills": {"sales": 3}},
         "gone": agent(), "tried": agent()},
        {"g": {"members": ["ok", "busy", "away", "ringing", "wrap", "late", "off", "nolang",
                           "noskill", "gone", "tried"], "skills": ["general"]}},
        [{"name": "all", "target": {"group": "g"}}],
    )
    now = MONDAY_10
    state = roster(
        available("ok", "tried"),
        {"busy": AgentPresence("busy", chosen="available", system="on_call", calls=("x",)),
         "away": AgentPresence("away", chosen="away", away_reason="meal"),
         "ringing": AgentPresence("ringing", chosen="available", system="ringing",
                                  offers=("o1",)),
         "wrap": AgentPresence("wrap", chosen="available", system="wrap_up",
                               wrap_up_until=now + timedelta(seconds=12)),
         "late": AgentPresence("late", chosen="available",
                               not_before=now + timedelta(seconds=25)),
         "off": AgentPresence("off"), "nolang": AgentPresence("nolang", chosen="available"),
         "noskill": AgentPresence("noskill", chosen="available")},
    )
    plan = route(request(tried=("tried",)), state, compiled(cfg), now)
    step = plan.steps[0]
    assert [c.agent for c in step.candidates] == ["ok"]
    assert {s.agent: (s.reason, s.detail) for s in step.skipped} == {
        "busy": ("busy", "on 1 call(s)"),
        "away": ("away", "meal"),
        "ringing": ("ringing", "another call is ringing"),
        "wrap": ("wrap_up", "12 s left"),
        "late": ("delayed", "25 s left after a missed offer"),
        "off": ("offline", ""),
        "nolang": ("wrong_language", "speaks en, call is zh"),
        "noskill": ("missing_skill", "lacks general"),
        "gone": ("offline", "not logged in"),
        "tried": ("already_tried", "was offered this call already"),
    }


def test_a_wrap_up_that_ran_out_counts_as_available_idle_since_its_end() -> None:
    cfg = config({"a": agent()}, {"g": {"members": ["a"]}}, [{"name": "r",
                                                               "target": {"group": "g"}}])
    ended = MONDAY_10 - timedelta(seconds=30)
    state = roster({"a": AgentPresence("a", chosen="available", system="wrap_up",
                                       wrap_up_until=ended)})
    plan = route(request(), state, compiled(cfg), MONDAY_10)
    assert plan.steps[0].candidates[0].why == "idle 30 s"


def test_overflow_chain_waits_add_up_and_closed_or_empty_groups_are_passed_at_once() -> None:
    cfg = config(
        {"a": agent(), "b": agent(), "c": agent()},
        {"day": {"members": ["a"], "calendar": "office", "overflow": {"group": "empty"}},
         "empty": {"members": ["b"], "overflow": {"group": "last"}, "max_wait_s": 30},
         "last": {"members": ["c"], "max_wait_s": 45, "overflow": {"callback": True}}},
        [{"name": "r", "target": {"group": "day"}}],
        calendars={"office": OFFICE},
    )
    state = roster(available("a", "c"))  # b is not logged in
    evening = MONDAY_10.replace(hour=20)
    plan = route(request(), state, compiled(cfg), evening)
    assert [(s.label(), s.status, s.starts_after_s) for s in plan.steps] == [
        ("group day", "closed", 0.0), ("group empty", "empty", 0.0),
        ("group last", "queue", 0.0), ("callback", "final", 45.0)]
    assert plan.steps[0].detail == "outside hours (closed)"
    assert plan.steps[0].skipped[0].reason == "outside_hours"
    plan = route(request(), state, compiled(cfg), MONDAY_10)
    assert [(s.label(), s.status, s.starts_after_s) for s in plan.steps][:2] == [
        ("group day", "queue", 0.0), ("group empty", "empty", 120.0)]


def test_a_group_with_members_logged_in_but_busy_still_queues() -> None:
    cfg = config({"a": agent()}, {"g": {"members": ["a"], "overflow": "voicemail"}},
                 [{"name": "r", "target": {"group": "g"}}])
    busy = {"a": AgentPresence("a", chosen="available", system="on_call", calls=("x",))}
    plan = route(request(), roster(busy), compiled(cfg), MONDAY_10)
    assert plan.steps[0].status == "queue" and plan.steps[0].candidates == []
    assert plan.steps[1].kind == "voicemail" and plan.steps[1].starts_after_s == 120.0


def test_agent_and_number_targets_with_the_rules_overflow() -> None:
    cfg = config(
        {"boss": agent(), "a": agent()}, {"g": {"members": ["a"]}},
        [{"name": "vip", "when": {"crm": {"vip": True}}, "target": {"agent": "boss"},
          "overflow": {"number": "+8613800138000"}},
         {"name": "rest", "target": {"number": "010-12345678"}, "overflow": {"group": "g"}}],
        offers={"agent_ring_timeout_s": 15, "number_ring_timeout_s": 25},
    )
    state = roster(available("a", "boss"))
    plan = route(request(crm={"vip": True}), state, compiled(cfg), MONDAY_10)
    assert [(s.label(), s.status, s.starts_after_s) for s in plan.steps] == [
        ("agent boss", "ring", 0.0), ("number +8613800138000", "ring", 15.0)]
    away = roster({"boss": AgentPresence("boss", chosen="away", away_reason="break")})
    plan = route(request(crm={"vip": True}), away, compiled(cfg), MONDAY_10)
    assert (plan.steps[0].status, plan.steps[0].detail) == ("unavailable", "away")
    assert plan.steps[1].starts_after_s == 0.0
    plan = route(request(), state, compiled(cfg), MONDAY_10)
    assert [(s.label(), s.starts_after_s) for s in plan.steps] == [
        ("number +861012345678", 0.0), ("group g", 25.0)]


def split_plan(call_id: str) -> RoutePlan:
    cfg = config({"a": agent(), "b": agent()},
                 {"north": {"members": ["a"]}, "south": {"members": ["b"]}},
                 [{"name": "r", "target": {"split": [{"group": "north", "percent": 70},
                                                    {"group": "south", "percent": 30}]}}])
    return route(request(call_id=call_id), roster(available("a", "b")), compiled(cfg),
                 MONDAY_10)


def test_percentage_split_is_stable_per_call_and_close_to_the_shares() -> None:
    assert split_plan("call-1").steps[0].group == split_plan("call-1").steps[0].group
    shares = Counter(split_plan(f"call-{i}").steps[0].group for i in range(2000))
    assert 1310 <= shares["north"] <= 1490  # 70 % of 2000 = 1400
    assert "split bucket" in split_plan("call-1").reason


def sticky_plan(**req: Any) -> RoutePlan:
    cfg = config({"a": agent(), "b": agent(), "c": agent()},
                 {"g": {"strategy": "sequential", "members": ["a", "b", "c"]}},
                 [{"name": "r", "target": {"group": "g"}}],
                 hotline={"sticky_window_h": 24})
    return route(request(**req), roster(available("a", "b", "c")), compiled(cfg), MONDAY_10)


def test_a_returning_caller_goes_to_their_last_agent_within_the_window() -> None:
    recent = MONDAY_10 - timedelta(hours=3)
    plan = sticky_plan(last_agent="c", last_served_at=recent)
    assert plan.candidate_ids() == ["c", "a", "b"]
    assert plan.steps[0].candidates[0].why == "sticky: served this caller 3.0 h ago"
    old = MONDAY_10 - timedelta(hours=30)
    assert sticky_plan(last_agent="c", last_served_at=old).candidate_ids() == ["a", "b", "c"]
    # the last agent is not free: no stickiness, nobody waits for them
    assert sticky_plan(last_agent="zed", last_served_at=recent).candidate_ids() == ["a", "b",
                                                                                    "c"]


def test_a_closed_calendar_on_the_hotline_and_open_groups() -> None:
    cfg = config({"a": agent()}, {"g": {"members": ["a"], "calendar": "always"}},
                 [{"name": "r", "target": {"group": "g"}}],
                 calendars={"always": ALWAYS_OPEN})
    plan = route(request(), roster(available("a")), compiled(cfg), MONDAY_10.replace(hour=3))
    assert plan.steps[0].status == "queue" and plan.time.calendar is None
