"""What is an alert, and when one is raised or cleared (pure: no I/O, no clock of its own).

``AlertBook`` keeps the active alerts by key (kind + subject) and the recent transitions. A
condition that holds again while its alert is active changes nothing (no storm); an alert
clears once its condition has ended (for the service level: once back at the clear level,
above the target, so a figure hovering at the target does not flap).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

Kind = Literal["sla", "hold", "sentiment"]
SEVERITY: dict[str, str] = {"sla": "critical", "hold": "warning", "sentiment": "warning"}
TEXT: dict[str, tuple[str, str]] = {
    "sla": ("Service level below target", "服务水平低于目标"),
    "hold": ("Caller waiting too long in queue", "排队等待过长"),
    "sentiment": ("Caller's sentiment falling", "来电者情绪下降"),
}


@dataclass(frozen=True)
class Alert:
    """One alert's state. ``value``/``threshold`` in ``unit`` ("%", "s", "score")."""

    kind: Kind
    key: str  # kind:subject, unique among active alerts
    queue: str | None
    call_id: str | None
    value: float
    threshold: float
    unit: str
    raised_at: datetime
    state: Literal["raised", "cleared"] = "raised"
    cleared_at: datetime | None = None
    node_id: str = ""
    detail: str = ""

    def event(self) -> dict[str, Any]:
        """The bus event and the webhook body."""
        en, zh = TEXT[self.kind]
        return {"type": "alert", "alert_id": self.key, "kind": self.kind,
                "severity": SEVERITY[self.kind], "state": self.state,
                "subject": {"queue": self.queue, "call_id": self.call_id},
                "value": self.value, "threshold": self.threshold, "unit": self.unit,
                "text": en, "text_zh": zh, "detail": self.detail, "node_id": self.node_id,
                "raised_at": self.raised_at.isoformat(),
                "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None,
                "at": (self.cleared_at or self.raised_at).isoformat()}


@dataclass
class AlertBook:
    """Active alerts and the last ``recent_max`` transitions (raised or cleared)."""

    recent_max: int = 200
    active: dict[str, Alert] = field(default_factory=dict)
    recent: deque[dict[str, Any]] = field(default_factory=deque)

    def raise_(self, alert: Alert) -> Alert | None:
        """The alert to publish, or None when one with its key is already active (its
        figure is updated in place)."""
        known = self.active.get(alert.key)
        if known is not None:
            self.active[alert.key] = replace(known, value=alert.value, detail=alert.detail)
            return None
        self.active[alert.key] = alert
        self._remember(alert)
        return alert

    def clear(self, key: str, now: datetime, value: float | None = None) -> Alert | None:
        """The cleared alert to publish, or None when ``key`` was not active."""
        known = self.active.pop(key, None)
        if known is None:
            return None
        done = replace(known, state="cleared", cleared_at=now,
                       value=known.value if value is None else value)
        self._remember(done)
        return done

    def keys(self, kind: Kind) -> list[str]:
        return [k for k, a in self.active.items() if a.kind == kind]

    def _remember(self, alert: Alert) -> None:
        self.recent.appendleft(alert.event())
        while len(self.recent) > self.recent_max:
            self.recent.pop()

    def view(self) -> dict[str, Any]:
        return {"active": [a.event() for a in self.active.values()],
                "recent": list(self.recent)}


def sla_breached(within: int, handed: int, *, target_pct: float, clear_pct: float,
                 min_calls: int, active: bool) -> tuple[bool, float | None]:
    """(alert on?, service level %) for ``within`` of ``handed`` calls answered in time.
    Fewer than ``min_calls`` calls: no verdict (an active alert stays until enough calls say
    the level is back)."""
    if handed <= 0:
        return active, None
    level = round(100.0 * within / handed, 1)
    if handed < min_calls:
        return active, level
    if active:
        return level < clear_pct, level
    return level < target_pct, level


def sentiment_falling(scores: list[float], *, below: float, drop: float) -> str | None:
    """Why a call's sentiment (its scored turns, oldest first) is falling, or None: the
    latest score below ``below``, or at least ``drop`` under the best earlier turn."""
    if not scores:
        return None
    last = scores[-1]
    if last < below:
        return f"score {last:.2f} < {below:g}"
    if len(scores) > 1 and max(scores[:-1]) - last >= drop:
        return f"fell {max(scores[:-1]) - last:.2f} from {max(scores[:-1]):.2f} (>= {drop:g})"
    return None
