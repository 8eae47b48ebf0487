"""Hourly roll-ups of the call records for the reports (table ``report_hourly``).

One row per UTC hour (of ``started_at``) x hotline number x locale x ``metric`` x
``dim1``/``dim2``, with a count ``n``, a second count ``m`` and a sum ``total``:

- ``calls``: dim1 the outcome ("" in progress), dim2 three flags (answered, handed off,
  answered by an agent: "101"); n calls.
- ``answer_wait`` (calls an agent answered): dim1 the bin, wait_s <= an edge of
  ``ANSWER_EDGES_S``, "inf" or "null"; n calls, total the sum of wait_s.
- ``abandon_wait`` (abandoned calls with a transfer): dim1 the lower edge of the
  [lo, hi) bin of ``ABANDON_EDGES_S``; n calls, total the sum of waits (first transfer ->
  end).
- ``queue_timeout``: n events. ``transfer``: dim1 reason, dim2 queue; n events.
- ``intent``: dim1 the intent, dim2 "null" when refused; n events, m those with confidence
  < ``LOW_CONFIDENCE``, total the sum of confidences.
- ``menu``: dim1 the node, dim2 "no_match", "no_input" or ""; n flow steps with an input.
  ``phrase``: dim1 the node, dim2 what the caller said; n no-match steps.
- ``sentiment``: dim1 the label; n events. ``ended_sentiment``: dim1 the label of each
  call's last sentiment event; n calls.

``contributions`` computes these rows from the raw records with the same SQL for one call
(``add_call``: run by the repository as the call ends, in the same transaction), for the
calls still in progress (the reports add them live), and for everything (``rebuild``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, insert, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from app.storage.db import Database
from app.storage.models import CallEventRow, CallRow, ReportHourlyRow, ReportRollupStateRow
from app.storage.sqlexpr import hour_value, payload_float, payload_text, seconds_between, utc_hour

ANSWER_EDGES_S = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
ABANDON_EDGES_S = (0, 5, 10, 20, 30, 60, 120)
LOW_CONFIDENCE = 0.6
NO_MATCH = ("no_match", "no_match_limit")
NO_INPUT = ("no_input", "no_input_limit")
INSERT_BATCH = 2000
PRIMARY_KEY = ("hour", "hotline_number", "locale", "metric", "dim1", "dim2")

Key = tuple[datetime, str, str, str, str, str]  # hour, number, locale, metric, dim1, dim2
Sums = dict[Key, list[float]]  # -> [n, m, total]


def _flag(cond: ColumnElement[bool]) -> ColumnElement[str]:
    return case((cond, "1"), else_="0")


def _answer_bin() -> ColumnElement[str]:
    wait = CallRow.wait_s
    whens: list[tuple[ColumnElement[bool], str]] = [(wait.is_(None), "null")]
    whens += [(wait <= edge, str(edge)) for edge in ANSWER_EDGES_S]
    return case(*whens, else_="inf")


def _abandon_bin(wait: ColumnElement[float]) -> ColumnElement[str]:
    edges = ABANDON_EDGES_S
    whens = [(wait < hi, str(lo)) for lo, hi in zip(edges, edges[1:], strict=False)]
    return case(*whens, else_=str(edges[-1]))


def _queries(backend: str, conds: Sequence[ColumnElement[bool]]) -> list[Any]:
    """(metric, select of hour, number, locale, dim1, dim2, n, m, total) per metric."""
    hour = utc_hour(backend, CallRow.started_at).label("hour")
    head = (hour, CallRow.hotline_number, CallRow.locale)
    zero, empty = literal(0), literal("")
    calls_of = select(CallRow.id).where(*conds)
    events = CallEventRow.call_id.in_(calls_of) if conds else literal(True)
    flags = (_flag(CallRow.answered_at.is_not(None)) + _flag(CallRow.handoff_target.is_not(None))
             + _flag(CallRow.answered_by.is_not(None)))
    first = (select(CallEventRow.call_id.label("call_id"), func.min(CallEventRow.at).label("at"))
             .where(CallEventRow.type == "transfer", events)
             .group_by(CallEventRow.call_id).subquery())
    wait = seconds_between(backend, first.c.at, CallRow.ended_at)
    last = (select(CallEventRow.call_id.label("call_id"), func.max(CallEventRow.seq).label("seq"))
            .where(CallEventRow.type == "sentiment", events)
            .group_by(CallEventRow.call_id).subquery())
    conf, said, decision = payload_float("confidence"), payload_text("input"), \
        payload_text("decision")
    node, intent = func.coalesce(payload_text("node"), ""), payload_text("intent")
    step_class = case((decision.in_(NO_MATCH), "no_match"), (decision.in_(NO_INPUT), "no_input"),
                      else_="")

    def on_events(kind: str, d1: Any, d2: Any, m: Any = zero, total: Any = zero,
                  *extra: ColumnElement[bool]) -> Any:
        return (select(*head, d1, d2, func.count(), m, total).select_from(CallEventRow)
                .join(CallRow, CallRow.id == CallEventRow.call_id)
                .where(CallEventRow.type == kind, *extra, *conds))

    return [
        ("calls", select(*head, func.coalesce(CallRow.outcome, ""), flags, func.count(), zero,
                         zero).where(*conds)),
        ("answer_wait", select(*head, _answer_bin(), empty, func.count(), zero,
                               func.coalesce(func.sum(CallRow.wait_s), 0.0))
         .where(CallRow.answered_by.is_not(None), *conds)),
        ("abandon_wait", select(*head, _abandon_bin(wait), empty, func.count(), zero,
                                func.sum(wait)).select_from(CallRow)
         .join(first, first.c.call_id == CallRow.id)
         .where(CallRow.outcome == "abandoned", wait.is_not(None), *conds)),
        ("queue_timeout", on_events("queue_timeout", empty, empty)),
        ("transfer", on_events("transfer", func.coalesce(payload_text("reason"), ""),
                               func.coalesce(payload_text("queue"), ""))),
        ("intent", on_events("intent", func.coalesce(intent, ""),
                             case((intent.is_(None), "null"), else_=""),
                             func.sum(case((conf < LOW_CONFIDENCE, 1), else_=0)),
                             func.coalesce(func.sum(conf), 0.0))),
        ("menu", on_events("flow_step", node, step_class, zero, zero,
                           said.is_not(None), said != "")),
        ("phrase", on_events("flow_step", node, func.coalesce(said, ""), zero, zero,
                             decision.in_(NO_MATCH))),
        ("sentiment", on_events("sentiment", func.coalesce(payload_text("label"), ""), empty)),
        ("ended_sentiment", on_events("sentiment", func.coalesce(payload_text("label"), ""),
                                      empty).join(last, and_(last.c.call_id == CallEventRow.call_id,
                                                             last.c.seq == CallEventRow.seq))),
    ]


def contributions(s: Session, backend: str, conds: Sequence[ColumnElement[bool]],
                  metrics: Sequence[str] | None = None) -> Sums:
    """The roll-up rows of the calls matching ``conds`` (conditions on ``calls``), of
    ``metrics`` (default: all)."""
    out: Sums = {}
    for metric, query in _queries(backend, conds):
        if metrics is not None and metric not in metrics:
            continue
        keys = [c for c in list(query.selected_columns)[:5] if not isinstance(c, BindParameter)]
        grouped = query.group_by(*keys)
        for hour, number, locale, d1, d2, n, m, total in s.execute(grouped).all():
            key = (hour_value(hour), str(number), str(locale), metric, str(d1), str(d2))
            acc = out.setdefault(key, [0, 0, 0.0])
            acc[0] += int(n)
            acc[1] += int(m or 0)
            acc[2] += float(total or 0.0)
    return out


def _values(sums: Sums) -> list[dict[str, Any]]:
    return [{"hour": k[0], "hotline_number": k[1], "locale": k[2], "metric": k[3],
             "dim1": k[4][:128], "dim2": k[5], "n": int(v[0]), "m": int(v[1]),
             "total": float(v[2])} for k, v in sums.items()]


def add_call(s: Session, backend: str, call_id: str) -> None:
    """Add one ended call to the roll-ups (in the caller's transaction)."""
    values = _values(contributions(s, backend, [CallRow.id == call_id]))
    if not values:
        return
    t = ReportHourlyRow
    stmt = (sqlite.insert(t) if backend == "sqlite" else postgresql.insert(t)).values(values)
    s.execute(stmt.on_conflict_do_update(index_elements=list(PRIMARY_KEY), set_={
        "n": t.n + stmt.excluded.n, "m": t.m + stmt.excluded.m,
        "total": t.total + stmt.excluded.total}))


def rebuild(db: Database) -> int:
    """Recompute every roll-up from the raw records (one transaction; calls ending meanwhile
    wait for it on PostgreSQL, SQLite serializes writers); marks them complete. Returns the
    number of ended calls rolled up."""
    with db.session(write=True) as s:
        if db.backend == "postgresql":
            s.execute(text("LOCK TABLE report_hourly IN EXCLUSIVE MODE"))
        s.execute(delete(ReportHourlyRow))
        values = _values(contributions(s, db.backend, [CallRow.ended_at.is_not(None)]))
        for first in range(0, len(values), INSERT_BATCH):
            s.execute(insert(ReportHourlyRow), values[first:first + INSERT_BATCH])
        calls = int(s.scalar(select(func.count()).where(CallRow.ended_at.is_not(None))) or 0)
        state = s.get(ReportRollupStateRow, 1)
        now = datetime.now(UTC)
        if state is None:
            s.add(ReportRollupStateRow(id=1, built_at=now, calls=calls))
        else:
            state.built_at, state.calls = now, calls
    return calls


def is_built(s: Session) -> bool:
    """Whether the roll-ups cover every ended call (a rebuild ran, or the database was empty
    when they were created)."""
    return s.get(ReportRollupStateRow, 1) is not None
