"""Text for people: a routing plan (``hotline routing explain``) and a replay report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app.routing.plan import RoutePlan, Step
from app.routing.replay import Change, SideResult


def _caller(plan: RoutePlan) -> str:
    c = plan.caller
    if not c.number:
        return "withheld"
    where = " ".join(x for x in (c.province, c.province_en) if x) or "region unknown"
    cities = "/".join(c.cities)
    if cities and cities != c.province:
        where += f", {cities}"
    return f"{c.number}: {where} ({c.number_type}; geocoder: {c.description or '-'})"


def _step_lines(i: int, step: Step) -> list[str]:
    when = "now" if step.starts_after_s == 0 else f"after {step.starts_after_s:.0f} s"
    head = f"  {i}. [{when}] {step.label()}"
    if step.kind == "group":
        head += (f": {step.strategy}{' (all at once)' if step.simultaneous else ''}, "
                 f"ring {step.ring_timeout_s:.0f} s, wait up to {step.max_wait_s:.0f} s")
    elif step.kind in ("agent", "number"):
        head += f": ring {step.ring_timeout_s:.0f} s"
    head += f"  -> {step.status}" + (f" ({step.detail})" if step.detail else "")
    lines = [head]
    for n, cand in enumerate(step.candidates, 1):
        prefix = "candidates:" if n == 1 else ""
        lines.append(f"       {prefix:<11} {n}. {cand.agent} {cand.name} "
                     f"[{', '.join(cand.devices)}] {cand.why}")
    if step.kind == "group" and not step.candidates and step.status == "queue":
        lines.append("       candidates: none free now (the call waits in the queue)")
    for n, skip in enumerate(step.skipped):
        prefix = "skipped:" if n == 0 else ""
        detail = f" ({skip.detail})" if skip.detail else ""
        lines.append(f"       {prefix:<11} {skip.agent}: {skip.reason}{detail}")
    return lines


def render_plan(plan: RoutePlan) -> str:
    lines = [
        f"hotline  {plan.hotline_number}" + (f" (flow {plan.flow})" if plan.flow else ""),
        f"caller   {_caller(plan)}",
        f"time     {plan.time.local:%Y-%m-%d %H:%M %z} ({plan.time.day}"
        + (f", calendar {plan.time.calendar})" if plan.time.calendar else ")"),
    ]
    if plan.rules:
        lines.append("rules (first match wins):")
        for r in plan.rules:
            mark = "MATCH" if r.matched else "no   "
            lines.append(f"  {r.index:>2} {r.name:<20} {mark} {'' if r.matched else r.reason}")
    lines.append(f"decision {plan.reason}" + (f"; caller priority {plan.priority}"
                                               if plan.priority else ""))
    if plan.steps:
        lines.append("steps:")
        for i, step in enumerate(plan.steps, 1):
            lines += _step_lines(i, step)
    else:
        lines.append("steps:   none (the flow's queue-timeout offer)")
    return "\n".join(line.rstrip() for line in lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


def render_replay(first: datetime, last: datetime, recorded: dict[str, Any],
                  sides: Sequence[SideResult], diff: Sequence[Change], show: int) -> str:
    stats = [s.stats() for s in sides]
    names = [s.name for s in sides]
    width = max(12, *(len(n) for n in names))
    lines = [f"replay {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC: "
             f"{recorded['handoffs']} handoff(s)"]
    if not recorded["handoffs"]:
        lines.append("no handoffs in this period (transfer events in call_events)")
        return "\n".join(lines)
    head = f"{'':<22}{'recorded':>12}" + "".join(f"{n:>{width + 2}}" for n in names)
    lines.append(head)
    rows: list[tuple[str, str, list[str]]] = [
        ("answered by an agent", "-", [f"{s['answered']} ({_pct(s['answer_rate'])})"
                                        for s in stats]),
        ("abandoned", str(recorded["abandoned"]),
         [str(s["outcomes"].get("abandoned", 0)) for s in stats]),
        ("mean wait s", _num(recorded["mean_wait_s"]), [_num(s["mean_wait_s"]) for s in stats]),
        ("p90 wait s (answered)", "-", [_num(s["p90_wait_s"]) for s in stats]),
    ]
    exits = sorted({k for s in stats for k in s["outcomes"]} - {"answered", "abandoned"})
    rows += [(f"left routing: {k}", "-", [str(s["outcomes"].get(k, 0)) for s in stats])
             for k in exits]
    for label, rec, values in rows:
        lines.append(f"{label:<22}{rec:>12}" + "".join(f"{v:>{width + 2}}" for v in values))
    lines.append("by target:")
    targets = sorted({t for s in stats for t in s["by_target"]})
    for t in targets:
        counts = " -> ".join(str(s["by_target"].get(t, 0)) for s in stats)
        lines.append(f"  {t:<30} {counts}")
    lines.append(f"changed: {len(diff)} of {recorded['handoffs']} handoff(s)")
    for c in diff[:show]:
        b, a = c.before, c.after
        lines.append(
            f"  {c.at:%m-%d %H:%M} {c.call_id} {c.caller or 'withheld'}: "
            f"{b.rule or '-'}/{b.target or '-'} {b.outcome}"
            f"{'' if b.wait_s is None else f' {b.wait_s:.0f} s'} -> "
            f"{a.rule or '-'}/{a.target or '-'} {a.outcome}"
            f"{'' if a.wait_s is None else f' {a.wait_s:.0f} s'}"
        )
    if len(diff) > show:
        lines.append(f"  ... {len(diff) - show} more (--show N)")
    return "\n".join(lines)


def replay_json(recorded: dict[str, Any], sides: Sequence[SideResult],
                diff: Sequence[Change]) -> dict[str, Any]:
    return {
        "recorded": recorded,
        "sides": {s.name: s.stats() for s in sides},
        "changed": [
            {"call_id": c.call_id, "at": c.at.isoformat(), "caller": c.caller,
             "before": vars(c.before), "after": vars(c.after)}
            for c in diff
        ],
    }
