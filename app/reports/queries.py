"""The reports by name, and ``run_report`` (blocking: call it in a thread)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from sqlalchemy.orm import Session

from app.reports import calls, rolled, staffing, understanding
from app.reports.calls import Context
from app.reports.filters import ReportFilter
from app.reports.model import Report
from app.reports.sql import cdr_columns
from app.storage.db import Database

ReportFn = Callable[[Session, ReportFilter, Context], Report]

REPORTS: dict[str, ReportFn] = {
    "outcomes": calls.outcomes,
    "calls_by_hour": partial(calls.volume, by="hour"),
    "calls_by_day": partial(calls.volume, by="day"),
    "calls_by_hour_of_day": partial(calls.volume, by="hour_of_day"),
    "calls_by_number": partial(calls.volume, by="number"),
    "handoffs": calls.handoffs,
    "waits": calls.waits,
    "intents": understanding.intents,
    "menu_nodes": understanding.menu_nodes,
    "sentiment": understanding.sentiment,
    "staffing": staffing.staffing,
}
# the same reports from the hourly roll-ups (rolled.unusable says when they cannot answer)
ROLLED: dict[str, ReportFn] = {
    "outcomes": rolled.outcomes,
    "calls_by_hour": partial(rolled.volume, by="hour"),
    "calls_by_day": partial(rolled.volume, by="day"),
    "calls_by_hour_of_day": partial(rolled.volume, by="hour_of_day"),
    "calls_by_number": partial(rolled.volume, by="number"),
    "handoffs": rolled.handoffs,
    "waits": rolled.waits,
    "intents": rolled.intents,
    "menu_nodes": rolled.menu_nodes,
    "sentiment": rolled.sentiment,
}


def run_report(db: Database, name: str, f: ReportFilter, *, sla_s: float = 20.0,
               short_abandon_s: float = 5.0, low_confidence: float = 0.6,
               rollups: bool = True) -> Report:
    """Report ``name`` over ``db``; ``ValueError`` naming the reports when unknown. From the
    hourly roll-ups when ``rollups`` and the filter allows (a note says which), else from
    the raw records."""
    fn = REPORTS.get(name)
    if fn is None:
        raise ValueError(f"unknown report {name!r}: use one of {', '.join(REPORTS)}")
    ctx = Context(backend=db.backend, columns=cdr_columns(db), sla_s=sla_s,
                  short_abandon_s=short_abandon_s, low_confidence=low_confidence)
    with db.session() as s:
        why = ("roll-ups not asked for" if not rollups else "not kept in the roll-ups"
               if name not in ROLLED else rolled.unusable(s, f, ctx))
        report = (ROLLED[name] if why is None else fn)(s, f, ctx)
    source = ("from the hourly roll-ups (and the calls in progress)" if why is None
              else f"from the raw call records ({why})")
    return replace(report, filter=f.describe(), notes=[*report.notes, source],
                   source="rollup" if why is None else "raw")
