"""The reports from the hourly roll-ups (``app.storage.rollup``) instead of the raw records:
the same ``*_report`` builders, fed with sums over ``report_hourly`` plus the calls still in
progress (summed live from the raw records by the same SQL that fills the roll-ups).

``unusable`` says why a filter cannot be answered from them (the raw records answer then):
the range must start and end on a UTC hour, hours and days must be whole hours off UTC, the
thresholds must be bin edges, and the roll-ups must be complete (``hotline reports rollup``).
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.reports.calls import (
    Context,
    OutcomeCounts,
    WaitCounts,
    handoffs_report,
    outcomes_report,
    volume_report,
    waits_report,
)
from app.reports.filters import ReportFilter
from app.reports.model import Report, pct
from app.reports.sql import BUCKETS, local_bucket
from app.reports.understanding import intents_report, menu_nodes_report, sentiment_report
from app.storage import rollup
from app.storage.models import CallRow, ReportHourlyRow
from app.storage.rollup import ABANDON_EDGES_S, ANSWER_EDGES_S, LOW_CONFIDENCE

Totals = dict[tuple[str, str, str], list[float]]  # (metric, dim1, dim2) -> [n, m, total]


def unusable(s: Session, f: ReportFilter, ctx: Context) -> str | None:
    """Why the roll-ups cannot answer ``f`` with ``ctx``'s thresholds (None: they can)."""
    for name in ("start", "end"):
        at = getattr(f, name).astimezone(UTC)
        if (at.minute, at.second, at.microsecond) != (0, 0, 0):
            return f"{name} is not on a whole UTC hour"
    if f.offset_s % 3600:
        return f"{f.tz} is not a whole number of hours off UTC"
    if ctx.sla_s not in ANSWER_EDGES_S:
        return f"service level {ctx.sla_s:g} s is not one of {ANSWER_EDGES_S}"
    if ctx.short_abandon_s not in ABANDON_EDGES_S:
        return f"short abandon {ctx.short_abandon_s:g} s is not one of {ABANDON_EDGES_S}"
    if ctx.low_confidence != LOW_CONFIDENCE:
        return f"low confidence {ctx.low_confidence:g} is not {LOW_CONFIDENCE:g}"
    if not rollup.is_built(s):
        return "the roll-ups were never built (hotline reports rollup)"
    return None


def _where(f: ReportFilter) -> list[Any]:
    t = ReportHourlyRow
    found = [t.hour >= f.start, t.hour < f.end]
    if f.number:
        found.append(t.hotline_number == f.number)
    if f.locale:
        found.append(t.locale == f.locale)
    return found


def _open_calls(s: Session, f: ReportFilter, ctx: Context,
                metrics: tuple[str, ...]) -> rollup.Sums:
    """The roll-up rows of the calls in progress (few: found first by ``ended_at IS NULL``)."""
    ids = s.scalars(select(CallRow.id).where(CallRow.ended_at.is_(None), *f.conditions())).all()
    if not ids:
        return {}
    return rollup.contributions(s, ctx.backend, [CallRow.id.in_(ids)], metrics)


def totals(s: Session, f: ReportFilter, ctx: Context, metrics: tuple[str, ...]) -> Totals:
    """{(metric, dim1, dim2): [n, m, total]} over the filter, calls in progress included."""
    t = ReportHourlyRow
    out: Totals = {}
    for metric, d1, d2, n, m, total in s.execute(
        select(t.metric, t.dim1, t.dim2, func.sum(t.n), func.sum(t.m), func.sum(t.total))
        .where(t.metric.in_(metrics), *_where(f)).group_by(t.metric, t.dim1, t.dim2)
    ).all():
        out[(metric, d1, d2)] = [int(n), int(m), float(total)]
    for key, (n2, m2, total2) in _open_calls(s, f, ctx, metrics).items():
        acc = out.setdefault((key[3], key[4], key[5]), [0, 0, 0.0])
        acc[0], acc[1], acc[2] = acc[0] + n2, acc[1] + m2, acc[2] + total2
    return out


def _calls(tot: Totals) -> list[tuple[str, str, int]]:
    return [(d1, d2, int(v[0])) for (metric, d1, d2), v in tot.items() if metric == "calls"]


def outcomes(s: Session, f: ReportFilter, ctx: Context) -> Report:
    tot = totals(s, f, ctx, ("calls", "abandon_wait"))
    calls = _calls(tot)
    by_outcome: dict[str, int] = {}
    for outcome, _, n in calls:
        by_outcome[outcome] = by_outcome.get(outcome, 0) + n
    short = sum(int(v[0]) for (metric, d1, _), v in tot.items()
                if metric == "abandon_wait" and int(d1) < ctx.short_abandon_s)
    return outcomes_report(OutcomeCounts(
        offered=sum(n for _, _, n in calls),
        answered=sum(n for _, flags, n in calls if flags[0] == "1"),
        handed=sum(n for _, flags, n in calls if flags[1] == "1"),
        contained=sum(n for o, flags, n in calls if o == "completed" and flags[1] == "0"),
        abandoned=by_outcome.get("abandoned", 0), short=short,
        agent_answered=sum(n for _, flags, n in calls if flags[2] == "1"),
        by_outcome=[(o or None, n) for o, n in by_outcome.items()]), ctx)


def volume(s: Session, f: ReportFilter, ctx: Context, by: str) -> Report:
    t = ReportHourlyRow
    key: Any = (t.hotline_number if by == "number"
                else local_bucket(ctx.backend, t.hour, by, f.offset_s))
    rows: dict[str, list[Any]] = {}

    def add(k: str, flags: str, outcome: str, n: int) -> None:
        row = rows.setdefault(k, [k, 0, 0, 0])
        row[1] += n
        row[2] += n if flags[1] == "1" else 0
        row[3] += n if outcome == "abandoned" else 0

    for k, outcome, flags, n in s.execute(
        select(key, t.dim1, t.dim2, func.sum(t.n)).where(t.metric == "calls", *_where(f))
        .group_by(key, t.dim1, t.dim2)
    ).all():
        add(str(k), flags, outcome, int(n))
    shift = timedelta(seconds=f.offset_s)
    for k2, (n, _, _) in _open_calls(s, f, ctx, ("calls",)).items():
        bucket = k2[1] if by == "number" else (k2[0] + shift).strftime(BUCKETS[by][0])
        add(bucket, k2[5], k2[4], int(n))
    return volume_report(f, by, list(rows.values()))


def handoffs(s: Session, f: ReportFilter, ctx: Context) -> Report:
    tot = totals(s, f, ctx, ("transfer",))
    return handoffs_report([(d1, d2, int(v[0])) for (_, d1, d2), v in tot.items()])


def waits(s: Session, f: ReportFilter, ctx: Context) -> Report:
    tot = totals(s, f, ctx, ("calls", "abandon_wait", "answer_wait", "queue_timeout"))
    bins = {int(d1): int(v[0]) for (metric, d1, _), v in tot.items()
            if metric == "abandon_wait"}
    abandoned_wait_s = sum(v[2] for (metric, _, _), v in tot.items() if metric == "abandon_wait")
    answered = {d1: v for (metric, d1, _), v in tot.items() if metric == "answer_wait"}
    timed = [v for d1, v in answered.items() if d1 != "null"]
    waited = sum(int(v[0]) for v in timed)
    within = sum(int(v[0]) for d1, v in answered.items()
                 if d1 not in ("null", "inf") and int(d1) <= ctx.sla_s)
    handed = sum(n for _, flags, n in _calls(tot) if flags[1] == "1")
    timeouts = sum(int(v[0]) for (metric, _, _), v in tot.items() if metric == "queue_timeout")
    return waits_report(WaitCounts(
        abandoned_bins=bins, abandoned=sum(bins.values()), abandoned_wait_s=abandoned_wait_s,
        short=sum(n for lo, n in bins.items() if lo < ctx.short_abandon_s),
        timeouts=timeouts, handed=handed,
        asa=round(sum(v[2] for v in timed) / waited, 2) if waited else None,
        sla=pct(within, handed)), ctx)


def intents(s: Session, f: ReportFilter, ctx: Context) -> Report:
    tot = totals(s, f, ctx, ("intent",))
    return intents_report([(None if d2 == "null" else d1, int(v[0]), v[2] / v[0] if v[0]
                            else None, int(v[1])) for (_, d1, d2), v in tot.items()], ctx)


def menu_nodes(s: Session, f: ReportFilter, ctx: Context) -> Report:
    tot = totals(s, f, ctx, ("menu", "phrase"))
    nodes: dict[str, list[int]] = {}
    phrases: dict[str, list[tuple[str, int]]] = {}
    for (metric, node, d2), v in tot.items():
        if metric == "phrase":
            phrases.setdefault(node, []).append((d2, int(v[0])))
            continue
        row = nodes.setdefault(node, [0, 0, 0])
        row[0] += int(v[0])
        row[1] += int(v[0]) if d2 == "no_match" else 0
        row[2] += int(v[0]) if d2 == "no_input" else 0
    return menu_nodes_report([(n, t, nm, ni) for n, (t, nm, ni) in nodes.items()], phrases)


def sentiment(s: Session, f: ReportFilter, ctx: Context) -> Report:
    tot = totals(s, f, ctx, ("sentiment", "ended_sentiment"))
    return sentiment_report(
        [(d1, int(v[0])) for (metric, d1, _), v in tot.items() if metric == "sentiment"],
        {d1: int(v[0]) for (metric, d1, _), v in tot.items() if metric == "ended_sentiment"})
