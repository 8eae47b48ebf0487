"""Staffing: Erlang C (the textbook M/M/N queue) from the measured arrival rate and handle
time, per half hour of the day.

No maintained package does only this (``pyworkforce`` brings OR-Tools and pandas for one
formula), so the formula is here: the Erlang B recursion ``B(0) = 1, B(n) = A B(n-1) /
(n + A B(n-1))`` (stable for large N), then ``C = N B / (N - A (1 - B))``; the service level
``1 - C exp(-(N - A) t / AHT)`` and ASA ``C AHT / (N - A)``. ``tests/reports/test_staffing``
checks it against a published worked example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.reports.calls import Context
from app.reports.filters import ReportFilter
from app.reports.model import Figure, Report
from app.reports.sql import half_hour_of_day
from app.storage.models import CallRow

HALF_HOUR_S = 1800.0
TARGET = 0.8  # answered within ctx.sla_s
DEFAULT_AHT_S = 180.0
MAX_AGENTS = 2000


def erlang_c(traffic_erl: float, agents: int) -> float:
    """The probability that a call waits, with ``agents`` and ``traffic_erl`` Erlangs offered
    (1.0 when the agents cannot keep up: agents <= traffic)."""
    if traffic_erl < 0 or agents < 0:
        raise ValueError(f"traffic and agents must be >= 0, got {traffic_erl}, {agents}")
    if traffic_erl == 0:
        return 0.0
    if agents <= traffic_erl:
        return 1.0
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic_erl * b / (n + traffic_erl * b)
    return agents * b / (agents - traffic_erl * (1 - b))


def service_level(traffic_erl: float, agents: int, aht_s: float, within_s: float) -> float:
    """The share of calls answered within ``within_s``."""
    if agents <= traffic_erl:
        return 0.0 if traffic_erl > 0 else 1.0
    wait = erlang_c(traffic_erl, agents)
    return 1.0 - wait * math.exp(-(agents - traffic_erl) * within_s / aht_s)


@dataclass(frozen=True)
class Staffing:
    agents: int
    traffic_erl: float
    service_level: float
    asa_s: float
    occupancy: float


def agents_needed(calls: float, interval_s: float, aht_s: float, target: float,
                  within_s: float) -> Staffing:
    """The fewest agents that answer ``target`` of ``calls`` (arriving in ``interval_s``)
    within ``within_s``; ``ValueError`` when the inputs make no sense."""
    if calls < 0 or interval_s <= 0 or aht_s <= 0 or not 0 < target < 1 or within_s < 0:
        raise ValueError(f"bad staffing inputs: calls={calls}, interval_s={interval_s}, "
                         f"aht_s={aht_s}, target={target}, within_s={within_s}")
    traffic = calls * aht_s / interval_s
    if traffic == 0:
        return Staffing(0, 0.0, 1.0, 0.0, 0.0)
    agents = max(1, math.floor(traffic) + 1)
    while service_level(traffic, agents, aht_s, within_s) < target:
        agents += 1
        if agents > MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} agents needed for {traffic:.0f} Erlangs")
    wait = erlang_c(traffic, agents)
    return Staffing(agents, traffic, service_level(traffic, agents, aht_s, within_s),
                    wait * aht_s / (agents - traffic), traffic / agents)


def staffing(s: Session, f: ReportFilter, ctx: Context) -> Report:
    """Agents needed per half hour of the day: calls handed to agents per half hour (the
    mean over the days of the range), the mean handle time of calls agents answered."""
    conds = f.conditions()
    slot = half_hour_of_day(ctx.backend, CallRow.started_at, f.offset_s)
    arrivals = dict(s.execute(select(slot, func.count())
                              .where(*conds, CallRow.handoff_target.is_not(None))
                              .group_by(slot)).all())
    handle = s.scalar(select(func.avg(func.coalesce(CallRow.talk_s, 0.0)
                                      + func.coalesce(CallRow.hold_s, 0.0)))
                      .where(*conds, CallRow.answered_by.is_not(None)))
    aht_s = float(handle) if handle else DEFAULT_AHT_S
    days = max(1.0, (f.end - f.start).total_seconds() / 86400.0)
    table: list[list[Any]] = []
    for key in sorted(arrivals):
        calls = int(arrivals[key]) / days
        need = agents_needed(calls, HALF_HOUR_S, aht_s, TARGET, ctx.sla_s)
        table.append([str(key), round(calls, 2), round(need.traffic_erl, 2), need.agents,
                      round(100 * need.service_level, 1), round(need.asa_s, 1),
                      round(100 * need.occupancy, 1)])
    peak = max(table, key=lambda r: r[3]) if table else None
    figures = [
        Figure("peak_agents", "Agents needed at the peak", "高峰所需坐席",
               peak[3] if peak else None,
               f"Erlang C: fewest agents answering {TARGET:.0%} within {ctx.sla_s:g} s"
               + (f" ({peak[0]})" if peak else ""), why="" if peak else "no handed-off call"),
        Figure("aht", "Handle time used", "平均处理时长", round(aht_s, 1),
               "mean talk + hold of calls an agent answered" if handle
               else f"assumed {DEFAULT_AHT_S:g} s: no call was answered by an agent", "s"),
    ]
    return Report("staffing", "Staffing (Erlang C) per half hour", "人力需求 (Erlang C)",
                  figures, ["half_hour", "calls", "erlangs", "agents", "service_level_pct",
                            "asa_s", "occupancy_pct"], table,
                  chart=[(r[0], float(r[3])) for r in table], chart_label="agents",
                  notes=[f"calls per half hour: handed-off calls / {days:g} day(s) of the "
                         f"range, in {f.tz}; wrap-up time not included; every day counted "
                         "alike (business hours and holidays not applied)"])
