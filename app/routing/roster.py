"""A roster file: who is logged in and how, for ``explain`` and ``replay`` (what-if).

::

    default: available          # agents not listed: available (or offline)
    agents:
      li.na: available
      chen.jing: away meal      # away with a reason: break, meal, training, outbound, other
      liu.yang: on_call
      zhao.lei: {state: available, idle_s: 600, calls_today: 12, talk_s_today: 3600}
      wang.fang: offline

Without a roster file every configured agent is available and idle since the decision time.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.routing.config import RoutingConfig
from app.routing.engine import RosterState
from app.routing.loader import RoutingFileError, error_location, error_reason, parse_yaml
from app.routing.presence import AWAY_REASONS, AgentPresence, AwayReason, ChosenStatus

RosterStateName = Literal["available", "offline", "away", "on_call", "ringing", "wrap_up"]
_SPEC = re.compile(r"^(available|offline|on_call|ringing|wrap_up|away)(?:[ :]+([a-z_]+))?$")


class AgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: RosterStateName = "available"
    reason: AwayReason | None = None
    idle_s: float = Field(default=0, ge=0)
    calls_today: int = Field(default=0, ge=0)
    talk_s_today: float = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            m = _SPEC.match(raw.strip())
            if not m:
                raise ValueError(f"agent state {raw!r}: one of available, offline, on_call, "
                                 f"ringing, wrap_up, away <{'|'.join(AWAY_REASONS)}>")
            return {"state": m.group(1), **({"reason": m.group(2)} if m.group(2) else {})}
        return raw

    @model_validator(mode="after")
    def _reason(self) -> AgentSpec:
        if (self.state == "away") != (self.reason is not None):
            raise ValueError("away needs a reason (away meal), and only away takes one")
        return self


class Roster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Literal["available", "offline"] = "available"
    agents: dict[str, AgentSpec] = Field(default_factory=dict)

    def available(self, config: RoutingConfig) -> tuple[str, ...]:
        listed = {a: s.state for a, s in self.agents.items()}
        return tuple(a for a in config.agents
                     if listed.get(a, self.default) == "available")

    def away(self) -> dict[str, AwayReason]:
        return {a: s.reason for a, s in self.agents.items() if s.reason is not None}


def presence_for(agent_id: str, spec: AgentSpec, now: datetime) -> AgentPresence:
    chosen: ChosenStatus = ("offline" if spec.state == "offline" else
                            "away" if spec.state == "away" else "available")
    since = now - timedelta(seconds=spec.idle_s)
    p = AgentPresence(agent_id, chosen=chosen, away_reason=spec.reason, idle_since=since,
                      calls_today=spec.calls_today, talk_s_today=spec.talk_s_today,
                      day=now.date(), changed_at=now)
    if spec.state == "on_call":
        return replace(p, system="on_call", calls=("(roster)",))
    if spec.state == "ringing":
        return replace(p, system="ringing", offers=("(roster)",))
    if spec.state == "wrap_up":
        return replace(p, system="wrap_up", wrap_up_until=now + timedelta(seconds=60))
    return p


def roster_state(config: RoutingConfig, roster: Roster | None, now: datetime) -> RosterState:
    """Presence of every configured agent as the roster says (all available without one)."""
    roster = roster or Roster()
    default = AgentSpec(state=roster.default)
    return RosterState({a: presence_for(a, roster.agents.get(a, default), now)
                        for a in config.agents})


def load_roster(file: Path, config: RoutingConfig | None = None) -> Roster:
    """Read a roster file; problems raise ``RoutingFileError`` (file, line, reason)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutingFileError(file, 1, f"cannot read: {exc}") from exc
    data, lines = parse_yaml(text, file, "a roster file")
    try:
        roster = Roster.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = error_location(tuple(err["loc"]))
        raise lines.error(loc, error_reason(err, loc)) from exc
    for agent in roster.agents:
        if config is not None and agent not in config.agents:
            raise lines.error(("agents", agent), f"unknown agent {agent!r} (not in the routing)")
    return roster
