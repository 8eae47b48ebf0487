"""Rules: first match wins, every condition kind, and the reason each earlier rule failed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from app.routing.conditions import day_kind
from app.routing.engine import route
from app.routing.plan import RoutePlan
from tests.helpers.routing import (
    ALWAYS_OPEN,
    BEIJING_MOBILE,
    MONDAY_10,
    SHANGHAI,
    SHANGHAI_FIXED,
    SHENZHEN_FIXED,
    agent,
    available,
    compiled,
    config,
    request,
    roster,
)

GROUPS = {g: {"members": ["a"]} for g in ("special", "other")}
BUSINESS = {
    "timezone": "Asia/Shanghai", "prc_holidays": True,
    "hours": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
}


def decide(when: dict[str, Any], at: datetime = MONDAY_10, **req: Any) -> RoutePlan:
    cfg = config(
        {"a": agent()}, GROUPS,
        [{"name": "special", "when": when, "target": {"group": "special"}},
         {"name": "rest", "target": {"group": "other"}}],
        calendars={"business": BUSINESS}, hotline={"calendar": "business"},
    )
    return route(request(**req), roster(available("a")), compiled(cfg), at)


def matches(when: dict[str, Any], at: datetime = MONDAY_10, **req: Any) -> bool:
    return decide(when, at, **req).rule == "special"


@pytest.mark.parametrize(("when", "req", "expected"), [
    ({"province": "北京"}, {"caller_number": BEIJING_MOBILE}, True),
    ({"province": ["广东", "上海"]}, {"caller_number": BEIJING_MOBILE}, False),
    ({"province": "Guangdong"}, {"caller_number": SHENZHEN_FIXED}, True),
    ({"city": "深圳"}, {"caller_number": SHENZHEN_FIXED}, True),
    ({"city": "广州"}, {"caller_number": SHENZHEN_FIXED}, False),
    ({"province": "北京"}, {"caller_number": ""}, False),          # withheld: region unknown
    ({"caller_prefix": "+86138"}, {"caller_number": BEIJING_MOBILE}, True),
    ({"caller_prefix": "+86139"}, {"caller_number": BEIJING_MOBILE}, False),
    ({"number_type": "mobile"}, {"caller_number": BEIJING_MOBILE}, True),
    ({"number_type": "mobile"}, {"caller_number": SHANGHAI_FIXED}, False),
    ({"intent": ["complaint", "refund_request"]}, {"intent": "complaint"}, True),
    ({"intent": "complaint"}, {"intent": None}, False),
    ({"slots": {"order_number": "*"}}, {"slots": {"order_number": "1234"}}, True),
    ({"slots": {"order_number": "*"}}, {"slots": {}}, False),
    ({"slots": {"product": ["fridge", "tv"]}}, {"slots": {"product": "tv"}}, True),
    ({"locale": "en"}, {"locale": "en"}, True),
    ({"locale": "en"}, {"locale": "zh"}, False),
    ({"sentiment": "negative"}, {"sentiment": "negative"}, True),
    ({"sentiment_below": -0.5}, {"sentiment_score": -0.7}, True),
    ({"sentiment_below": -0.5}, {"sentiment_score": -0.2}, False),
    ({"crm": {"vip": True}}, {"crm": {"vip": True}}, True),
    ({"crm": {"vip": True}}, {"crm": {"vip": 1}}, False),          # 1 is not true
    ({"crm": {"vip": True}}, {"crm": {}}, False),
    ({"crm": {"tier": ["gold", "platinum"]}}, {"crm": {"tier": "gold"}}, True),
    ({"crm": {"orders": 12}}, {"crm": {"orders": "12"}}, True),
    ({"queue": "senior"}, {"queue": "senior"}, True),
    ({"skill": "repairs"}, {"skills": ("general", "repairs")}, True),
    ({"skill": "repairs"}, {"skills": ("general",)}, False),
    ({"province": "北京", "intent": "complaint"},
     {"caller_number": BEIJING_MOBILE, "intent": "order_status"}, False),  # AND
])
def test_conditions_on_the_caller_and_what_the_bot_learned(
        when: dict[str, Any], req: dict[str, Any], expected: bool) -> None:
    assert matches(when, **req) is expected


@pytest.mark.parametrize(("day", "kind"), [
    ("2026-03-02", "workday"),    # Monday
    ("2026-03-01", "weekend"),    # Sunday
    ("2026-02-16", "holiday"),    # Spring Festival, a Monday
    ("2026-02-14", "makeup"),     # 调休: Saturday worked for the Spring Festival
    ("2025-09-28", "makeup"),     # 调休: Sunday worked for National Day
    ("2026-10-01", "holiday"),
    ("2031-03-03", "workday"),    # beyond the holiday data: by weekday
])
def test_day_kinds_from_prc_holiday_data(day: str, kind: str) -> None:
    assert day_kind(datetime.fromisoformat(day).date()) == kind


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(("when", "moment", "expected"), [
    ({"day": "makeup"}, "2026-02-14T10:00", True),
    ({"day": "makeup"}, "2026-02-15T10:00", False),     # a holiday, not a make-up day
    ({"day": ["holiday"]}, "2026-02-16T10:00", True),
    ({"day": ["weekend"]}, "2026-03-01T10:00", True),
    ({"day": ["workday", "makeup"]}, "2026-03-02T10:00", True),
    ({"calendar": "open"}, "2026-03-02T10:00", True),
    ({"calendar": "closed"}, "2026-03-02T19:30", True),
    ({"calendar": "closed"}, "2026-03-01T10:00", True),  # Sunday: no hours
    ({"calendar": "holiday"}, "2026-02-16T10:00", True),
    ({"calendar": "open"}, "2026-02-14T10:00", True),    # make-up Saturday has Monday's hours
    ({"hours": ["12:00-14:00", "20:00-24:00"]}, "2026-03-02T12:30", True),
    ({"hours": ["12:00-14:00", "20:00-24:00"]}, "2026-03-02T23:59", True),
    ({"hours": ["12:00-14:00"]}, "2026-03-02T14:00", False),   # the end is exclusive
    ({"weekdays": ["sat", "sun"]}, "2026-03-01T10:00", True),
    ({"weekdays": ["sat", "sun"]}, "2026-03-02T10:00", False),
    ({"dates": ["2026-03-02"]}, "2026-03-02T10:00", True),
])
def test_time_conditions_in_the_hotline_time_zone(when: dict[str, Any], moment: str,
                                                  expected: bool) -> None:
    assert matches(when, at(moment)) is expected


def test_time_is_compared_in_shanghai_whatever_the_offset_of_now() -> None:
    utc_morning = datetime.fromisoformat("2026-03-02T04:30:00+00:00")  # 12:30 in Shanghai
    assert matches({"hours": ["12:00-14:00"]}, utc_morning)


def test_first_match_wins_and_each_earlier_rule_says_why_not() -> None:
    plan = decide({"province": "上海", "intent": "complaint"}, caller_number=BEIJING_MOBILE,
                  intent="complaint")
    assert plan.rule == "rest" and plan.source == "rule" and plan.rule_index == 2
    assert [(r.name, r.matched) for r in plan.rules] == [("special", False), ("rest", True)]
    assert plan.rules[0].reason == "province is 北京, rule wants 上海"
    assert decide({"crm": {"vip": True}}).rules[0].reason == "crm.vip is missing, rule wants true"
    assert decide({"day": "holiday"}).rules[0].reason == \
        "day 2026-03-02 is workday, rule wants holiday"


def test_no_rule_matches_default_then_flow_queue_then_nothing() -> None:
    groups = {"general": {"members": ["a"]}, "vip": {"members": ["a"]}}
    rules = [{"name": "vip", "when": {"crm": {"vip": True}}, "target": {"group": "vip"}}]
    with_default = config({"a": agent()}, groups, rules, hotline={"default": {"group": "vip"}})
    plain = config({"a": agent()}, groups, rules)
    state = roster(available("a"))
    plan = route(request(queue="general"), state, compiled(with_default), MONDAY_10)
    assert (plan.source, plan.steps[0].group) == ("default", "vip")
    plan = route(request(queue="general"), state, compiled(plain), MONDAY_10)
    assert (plan.source, plan.steps[0].group) == ("flow_queue", "general")
    plan = route(request(queue="repairs"), state, compiled(plain), MONDAY_10)
    assert plan.source == "none" and plan.steps == [] and plan.target is None
    assert plan.reason == "no rule matched and no default; no group named 'repairs'"
    plan = route(request(hotline_number="4009999999"), state, compiled(plain), MONDAY_10)
    assert plan.reason == "hotline 4009999999 has no routing" and plan.rules == []


def test_a_naive_time_is_refused() -> None:
    cfg = config({"a": agent()}, GROUPS, calendars={"open": ALWAYS_OPEN})
    with pytest.raises(ValueError, match="aware"):
        route(request(), roster(), compiled(cfg), datetime(2026, 3, 2, 10, 0))
