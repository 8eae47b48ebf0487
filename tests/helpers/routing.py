"""Small routing configurations, requests and presence for the routing tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.routing.config import RoutingConfig
from app.routing.engine import CompiledRouting, RosterState
from app.routing.plan import RouteRequest
from app.routing.presence import AgentPresence
from app.routing.refs import check_refs
from app.settings import PROJECT_ROOT

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEMO = PROJECT_ROOT / "routing" / "demo_hotline.yaml"
NUMBER = "4008001234"
# Monday 2 March 2026, 10:00 in Shanghai: an ordinary workday, inside business hours.
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
BEIJING_MOBILE = "+8613800138000"
SHENZHEN_FIXED = "+8675512345678"
SHANGHAI_FIXED = "+862165432100"

ALWAYS_OPEN = {"timezone": "Asia/Shanghai", "prc_holidays": False,
               "hours": {d: ["00:00-24:00"] for d in
                         ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}


def config(agents: dict[str, Any], groups: dict[str, Any],
           rules: list[dict[str, Any]] | None = None, **extra: Any) -> RoutingConfig:
    """A validated configuration with one hotline (NUMBER) whose rules are ``rules``."""
    hotline = {"number": NUMBER, "rules": rules or [], **extra.pop("hotline", {})}
    doc = {"agents": agents, "groups": groups, "hotlines": [hotline], **extra}
    cfg = RoutingConfig.model_validate(doc)
    problems = check_refs(cfg)
    assert not problems, problems
    return cfg


def agent(languages: tuple[str, ...] = ("zh",), **skills: int) -> dict[str, Any]:
    return {"name": "Agent", "languages": list(languages), "skills": skills or {"general": 1}}


def request(**fields: Any) -> RouteRequest:
    base: dict[str, Any] = {"call_id": "c1", "hotline_number": NUMBER,
                            "caller_number": SHANGHAI_FIXED}
    return RouteRequest(**{**base, **fields})


def available(*agent_ids: str, at: datetime = MONDAY_10, **fields: Any) -> dict[str,
                                                                                AgentPresence]:
    return {a: AgentPresence(a, chosen="available", idle_since=at - timedelta(seconds=60),
                             **fields) for a in agent_ids}


def roster(*presences: dict[str, AgentPresence], last_offered: dict[str, str] | None = None
           ) -> RosterState:
    merged: dict[str, AgentPresence] = {}
    for p in presences:
        merged.update(p)
    return RosterState(merged, last_offered or {})


def compiled(cfg: RoutingConfig) -> CompiledRouting:
    return CompiledRouting(cfg)
