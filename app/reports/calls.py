"""Call volume, outcomes (answered, abandoned, containment, 接通率, 呼损), handoff reasons,
and wait times. Each function is one report: ``(session, filter, context) -> Report``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from app.reports.filters import ReportFilter
from app.reports.model import Figure, Report, pct
from app.reports.sql import local_bucket, payload_text, seconds_between
from app.storage.models import CallEventRow, CallRow
from app.storage.rollup import ABANDON_EDGES_S


@dataclass(frozen=True)
class Context:
    """What a report needs besides the filter: the backend, the CDR columns present, the
    thresholds (service level, short abandon, low confidence)."""

    backend: str
    columns: frozenset[str]
    sla_s: float = 20.0
    short_abandon_s: float = 5.0
    low_confidence: float = 0.6

    @property
    def has_agent_columns(self) -> bool:
        return {"answered_by", "wait_s"} <= self.columns


AGENT_MISSING = ("needs the agent columns of the call record (answered_by, wait_s), which "
                 "this database does not have yet")


def volume(s: Session, f: ReportFilter, ctx: Context, by: str) -> Report:
    """Calls per ``by`` ("hour", "day", "hour_of_day", "number")."""
    if by == "number":
        key: Any = CallRow.hotline_number
    else:
        key = local_bucket(ctx.backend, CallRow.started_at, by, f.offset_s)
    handed = func.count(CallRow.handoff_target)
    abandoned = func.sum(case((CallRow.outcome == "abandoned", 1), else_=0))
    rows = s.execute(
        select(key.label("k"), func.count().label("n"), handed, abandoned)
        .where(*f.conditions()).group_by(key).order_by(key)
    ).all()
    return volume_report(f, by, [[str(k), int(n), int(h), int(a or 0)] for k, n, h, a in rows])


def volume_report(f: ReportFilter, by: str, table: list[list[Any]]) -> Report:
    """The volume report from its rows: [bucket, calls, handed_off, abandoned]."""
    table = sorted(table, key=lambda r: str(r[0]))
    total = sum(r[1] for r in table)
    busiest = max(table, key=lambda r: r[1]) if table else None
    label = {"hour": "hour", "day": "day", "hour_of_day": "hour of day",
             "number": "hotline number"}[by]
    figures = [
        Figure("offered", "Calls offered", "呼入总量", total,
               "count of calls that started in the range (filters applied)"),
        Figure("busiest", f"Busiest {label}", "最忙时段",
               busiest[1] if busiest else None,
               f"largest count of calls in one {label}"
               + (f" ({busiest[0]})" if busiest else ""), why="no calls" if not busiest else ""),
    ]
    zh = {"hour": "小时", "day": "日", "hour_of_day": "时段", "number": "号码"}[by]
    return Report(f"calls_by_{by}", f"Calls per {label}", f"按{zh}统计呼入",
                  figures, [by, "calls", "handed_off", "abandoned"], table,
                  chart=[(r[0], float(r[1])) for r in table], chart_label="calls",
                  notes=[f"hours and days in {f.tz} (UTC{f.offset_s / 3600:+g})"]
                  if by != "number" else [])


def _first_transfer() -> Any:
    return (select(CallEventRow.call_id.label("call_id"),
                   func.min(CallEventRow.at).label("at"))
            .where(CallEventRow.type == "transfer")
            .group_by(CallEventRow.call_id).subquery())


@dataclass(frozen=True)
class OutcomeCounts:
    """What the outcomes report counts; ``by_outcome``: (outcome or None, calls)."""

    offered: int
    answered: int
    handed: int
    contained: int
    abandoned: int
    short: int
    agent_answered: int | None
    by_outcome: list[tuple[str | None, int]]


def outcomes(s: Session, f: ReportFilter, ctx: Context) -> Report:
    """Answered, abandoned, containment, and the Chinese 400 figures beside them."""
    conds = f.conditions()
    counts = s.execute(select(
        func.count(),
        func.count(CallRow.answered_at),
        func.count(CallRow.handoff_target),
        func.sum(case((and_(CallRow.handoff_target.is_(None), CallRow.outcome == "completed"),
                       1), else_=0)),
        func.sum(case((CallRow.outcome == "abandoned", 1), else_=0)),
    ).where(*conds)).one()
    offered, answered, handed, contained, abandoned = (int(v or 0) for v in counts)
    first = _first_transfer()
    wait = seconds_between(ctx.backend, first.c.at, CallRow.ended_at)
    short = int(s.scalar(
        select(func.count()).select_from(CallRow).join(first, first.c.call_id == CallRow.id)
        .where(*conds, CallRow.outcome == "abandoned", wait < ctx.short_abandon_s)) or 0)
    by_outcome = s.execute(select(CallRow.outcome, func.count()).where(*conds)
                           .group_by(CallRow.outcome)).all()
    agent_answered: int | None = None
    if ctx.has_agent_columns:
        col = CallRow.__table__.c
        agent_answered = int(s.scalar(select(func.count()).select_from(CallRow)
                                      .where(*conds, col["answered_by"].is_not(None))) or 0)
    return outcomes_report(OutcomeCounts(
        offered, answered, handed, contained, abandoned, short, agent_answered,
        [(o, int(c)) for o, c in by_outcome]), ctx)


def outcomes_report(c: OutcomeCounts, ctx: Context) -> Report:
    offered, answered, handed, contained = c.offered, c.answered, c.handed, c.contained
    abandoned, short, agent_answered = c.abandoned, c.short, c.agent_answered
    n = ctx.short_abandon_s
    figures = [
        Figure("offered", "Calls offered", "呼入量", offered, "calls that started in the range"),
        Figure("answered", "Answered by the system", "系统应答量", answered,
               "calls with answered_at set (the bot picked up)"),
        Figure("answer_rate", "Answer rate", "接通率", pct(answered, offered),
               "answered / offered", "%"),
        Figure("contained", "Contained (resolved by the bot)", "机器人自助解决", contained,
               "calls that ended with outcome 'completed' and no handoff"),
        Figure("containment", "Containment rate", "自助解决率", pct(contained, answered),
               "contained / answered", "%"),
        Figure("handed_off", "Handed to an agent", "转人工量", handed,
               "calls with a transfer (handoff_target set)"),
        Figure("handoff_rate", "Handoff rate", "转人工率", pct(handed, answered),
               "handed_off / answered", "%"),
        Figure("abandoned", "Abandoned in queue", "排队放弃", abandoned,
               "calls with outcome 'abandoned' (the caller hung up while queued)"),
        Figure("short_abandons", f"Short abandons (< {n:g} s)", f"短时放弃 (<{n:g}秒)", short,
               f"abandoned calls whose wait (first transfer -> end) was under {n:g} s; "
               "counted apart, left out of the abandonment rate"),
        Figure("abandon_rate", "Abandonment rate", "放弃率",
               pct(abandoned - short, handed - short),
               "(abandoned - short abandons) / (handed_off - short abandons)", "%"),
        Figure("agent_answered", "Answered by an agent", "人工接通量", agent_answered,
               "calls with answered_by set", why="" if ctx.has_agent_columns else AGENT_MISSING),
        Figure("agent_answer_rate", "Agent answer rate", "人工接通率",
               pct(agent_answered, handed), "answered by an agent / handed_off", "%",
               why="" if ctx.has_agent_columns else AGENT_MISSING),
        Figure("lost_rate", "Lost-call rate", "呼损率",
               pct(offered - answered + abandoned, offered),
               "(offered - answered + abandoned) / offered", "%"),
    ]
    ordered = sorted(c.by_outcome, key=lambda oc: (-oc[1], oc[0] or ""))
    table: list[list[Any]] = [[str(o or "(in progress)"), n, pct(n, offered)]
                              for o, n in ordered]
    return Report("outcomes", "Answered, abandoned, containment", "接通、放弃与自助解决",
                  figures, ["outcome", "calls", "percent_of_offered"], table,
                  chart=[(r[0], float(r[1])) for r in table], chart_label="calls")


def handoffs(s: Session, f: ReportFilter, ctx: Context) -> Report:
    """Why calls went to an agent (the transfer events' reasons), and to which queue."""
    reason, queue = payload_text("reason"), payload_text("queue")
    rows = s.execute(
        select(reason, queue, func.count())
        .join(CallRow, CallRow.id == CallEventRow.call_id)
        .where(CallEventRow.type == "transfer", *f.conditions())
        .group_by(reason, queue)
    ).all()
    return handoffs_report([(str(r or ""), str(q or ""), int(n)) for r, q, n in rows])


def handoffs_report(rows: list[tuple[str, str, int]]) -> Report:
    """The handoffs report from (reason, queue, transfers)."""
    rows = sorted(rows, key=lambda r: (-r[2], r[0], r[1]))
    total = sum(r[2] for r in rows)
    table: list[list[Any]] = [[r, q, n, pct(n, total)] for r, q, n in rows]
    by_reason: dict[str, int] = {}
    for r, _, n in rows:
        by_reason[r] = by_reason.get(r, 0) + n
    figures = [Figure("transfers", "Transfers", "转人工次数", total,
                      "transfer events of calls in the range (a call may transfer twice)")]
    return Report("handoffs", "Handoff reasons", "转人工原因", figures,
                  ["reason", "queue", "transfers", "percent"], table,
                  chart=sorted(((k, float(v)) for k, v in by_reason.items()),
                               key=lambda kv: (-kv[1], kv[0])), chart_label="transfers")


@dataclass(frozen=True)
class WaitCounts:
    """What the waits report counts: abandoned calls per wait bin (lower edge of
    ``ABANDON_EDGES_S`` -> calls), their number and summed wait; queue timeouts; handed-off
    calls; ASA and service level (None without the agent columns)."""

    abandoned_bins: dict[int, int]
    abandoned: int
    abandoned_wait_s: float
    short: int
    timeouts: int
    handed: int
    asa: float | None
    sla: float | None


def waits(s: Session, f: ReportFilter, ctx: Context) -> Report:
    """Wait in queue: ASA and service level (needs the agent columns), abandonment by wait
    (from the event log: the first transfer to the end of an abandoned call)."""
    conds = f.conditions()
    first = _first_transfer()
    wait = seconds_between(ctx.backend, first.c.at, CallRow.ended_at)
    abandoned_waits = [float(w) for (w,) in s.execute(
        select(wait).select_from(CallRow).join(first, first.c.call_id == CallRow.id)
        .where(*conds, CallRow.outcome == "abandoned")).all() if w is not None]
    timeouts = int(s.scalar(
        select(func.count()).select_from(CallEventRow)
        .join(CallRow, CallRow.id == CallEventRow.call_id)
        .where(CallEventRow.type == "queue_timeout", *conds)) or 0)
    handed = int(s.scalar(select(func.count(CallRow.handoff_target)).where(*conds)) or 0)
    asa: float | None = None
    sla: float | None = None
    counts = service_level_counts(s, f, ctx)
    if counts is not None:
        col = CallRow.__table__.c
        got = s.scalar(select(func.avg(col["wait_s"]))
                       .where(*conds, col["answered_by"].is_not(None)))
        asa = round(float(got), 2) if got is not None else None
        sla = pct(*counts)
    bins = dict.fromkeys(ABANDON_EDGES_S, 0)
    for w in abandoned_waits:
        bins[max(e for e in ABANDON_EDGES_S if e <= w or e == 0)] += 1
    short = sum(1 for w in abandoned_waits if w < ctx.short_abandon_s)
    return waits_report(WaitCounts(bins, len(abandoned_waits), sum(abandoned_waits), short,
                                   timeouts, handed, asa, sla), ctx)


def service_level_counts(s: Session, f: ReportFilter, ctx: Context) -> tuple[int, int] | None:
    """The service level's two counts: (calls an agent answered within ``ctx.sla_s``,
    handed-off calls); None without the agent columns. The waits report and the alerts'
    rolling service level (``app.alerts``) both use it."""
    if not ctx.has_agent_columns:
        return None
    conds = f.conditions()
    col = CallRow.__table__.c
    handed = int(s.scalar(select(func.count(CallRow.handoff_target)).where(*conds)) or 0)
    within = s.scalar(select(func.count()).select_from(CallRow).where(
        *conds, col["answered_by"].is_not(None), col["wait_s"] <= ctx.sla_s))
    return int(within or 0), handed


def waits_report(c: WaitCounts, ctx: Context) -> Report:
    why = "" if ctx.has_agent_columns else AGENT_MISSING
    figures = [
        Figure("asa", "Average speed of answer (ASA)", "平均应答时长", c.asa,
               "mean wait (transfer -> agent answers) of calls an agent answered", "s",
               why=why),
        Figure("service_level", f"Service level ({ctx.sla_s:g} s)",
               f"{ctx.sla_s:g}秒接通率", c.sla,
               f"calls an agent answered within {ctx.sla_s:g} s / handed_off "
               "(abandoned calls count against it, short abandons included)", "%", why=why),
        Figure("abandoned", "Abandoned in queue", "排队放弃", c.abandoned,
               "abandoned calls with a transfer event"),
        Figure("short_abandons", f"Short abandons (< {ctx.short_abandon_s:g} s)",
               "短时放弃", c.short, f"abandoned with a wait under {ctx.short_abandon_s:g} s"),
        Figure("avg_abandon_wait", "Average wait before abandoning", "放弃前平均等待",
               round(c.abandoned_wait_s / c.abandoned, 2) if c.abandoned else None,
               "mean of (end - first transfer) over abandoned calls", "s",
               why="" if c.abandoned else "no abandoned call"),
        Figure("queue_timeouts", "Queue timeouts", "排队超时", c.timeouts,
               "queue_timeout events (the caller waited the queue's maximum)"),
    ]
    bins = _bin_labels(c.abandoned_bins)
    return Report("waits", "Wait times and abandonment by wait", "等待时长与放弃",
                  figures, ["waited", "abandoned"], [[k, v] for k, v in bins],
                  chart=[(k, float(v)) for k, v in bins], chart_label="abandoned calls")


def _bin_labels(bins: dict[int, int]) -> list[tuple[str, int]]:
    edges = ABANDON_EDGES_S
    out = [(f"{lo:g}-{hi:g} s", bins.get(lo, 0)) for lo, hi in zip(edges, edges[1:],
                                                                   strict=False)]
    out.append((f">= {edges[-1]:g} s", bins.get(edges[-1], 0)))
    return out
