"""What the bot understood: intents and their confidence, per-menu-node no-match and
no-input rates with what callers actually said, sentiment and calls that ended angry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from app.reports.calls import Context
from app.reports.filters import ReportFilter
from app.reports.model import Figure, Report, pct
from app.reports.sql import payload_float, payload_text
from app.storage.models import CallEventRow, CallRow

REFUSED = "(refused)"
NO_MATCH = ("no_match", "no_match_limit")
NO_INPUT = ("no_input", "no_input_limit")
PHRASES_PER_NODE = 5
SPEECH = "speech:"


def intents(s: Session, f: ReportFilter, ctx: Context) -> Report:
    """Intent events: how often each intent was found, with what confidence."""
    intent, conf = payload_text("intent"), payload_float("confidence")
    low = func.sum(case((conf < ctx.low_confidence, 1), else_=0))
    rows = s.execute(
        select(intent, func.count(), func.avg(conf), low)
        .join(CallRow, CallRow.id == CallEventRow.call_id)
        .where(CallEventRow.type == "intent", *f.conditions())
        .group_by(intent)
    ).all()
    return intents_report([(i, int(n), float(a) if a is not None else None, int(lo or 0))
                           for i, n, a, lo in rows], ctx)


def intents_report(rows: list[tuple[str | None, int, float | None, int]],
                   ctx: Context) -> Report:
    """The intents report from (intent or None when refused, turns, mean confidence,
    low-confidence turns)."""
    rows = sorted(rows, key=lambda r: (-r[1], r[0] is None, r[0] or ""))
    total = sum(int(r[1]) for r in rows)
    refused = sum(int(r[1]) for r in rows if r[0] is None)
    lows = sum(int(r[3] or 0) for r in rows if r[0] is not None)
    conf_sum = sum(float(r[2] or 0) * int(r[1]) for r in rows)
    table: list[list[Any]] = [[str(i) if i is not None else REFUSED, int(n),
              round(float(a), 3) if a is not None else None, int(lo or 0)]
             for i, n, a, lo in rows]
    figures = [
        Figure("turns", "Turns classified", "意图识别次数", total,
               "intent events of calls in the range"),
        Figure("refused_rate", "Refused (no intent)", "未识别率", pct(refused, total),
               "intent events with no intent / all intent events", "%"),
        Figure("low_confidence_rate", f"Low confidence (< {ctx.low_confidence:g})",
               "低置信度占比", pct(lows, total - refused),
               f"intents found with confidence < {ctx.low_confidence:g} / intents found", "%"),
        Figure("mean_confidence", "Mean confidence", "平均置信度",
               round(conf_sum / total, 3) if total else None,
               "mean of the confidence of every intent event (refused ones included)",
               why="" if total else "no intent event"),
    ]
    return Report("intents", "Intents and confidence", "意图与置信度", figures,
                  ["intent", "turns", "mean_confidence", "low_confidence"], table,
                  chart=[(r[0], float(r[1])) for r in table], chart_label="turns")


def menu_nodes(s: Session, f: ReportFilter, ctx: Context) -> Report:
    """Per flow node: caller turns, no-match and no-input rates, and the phrases callers
    said when the node did not understand them (which menu confuses callers)."""
    node, decision, said = payload_text("node"), payload_text("decision"), payload_text("input")
    steps = and_(CallEventRow.type == "flow_step", said.is_not(None), said != "")
    no_match = func.sum(case((decision.in_(NO_MATCH), 1), else_=0))
    no_input = func.sum(case((decision.in_(NO_INPUT), 1), else_=0))
    rows = s.execute(
        select(node, func.count(), no_match, no_input)
        .join(CallRow, CallRow.id == CallEventRow.call_id)
        .where(steps, *f.conditions()).group_by(node)
    ).all()
    phrases: dict[str, list[tuple[str, int]]] = {}
    for n, text, count in s.execute(
        select(node, said, func.count())
        .join(CallRow, CallRow.id == CallEventRow.call_id)
        .where(CallEventRow.type == "flow_step", decision.in_(NO_MATCH), *f.conditions())
        .group_by(node, said)
    ).all():
        phrases.setdefault(str(n or ""), []).append((str(text or ""), int(count)))
    return menu_nodes_report([(str(n or ""), int(t), int(nm or 0), int(ni or 0))
                              for n, t, nm, ni in rows], phrases)


def menu_nodes_report(rows: list[tuple[str, int, int, int]],
                      phrases: dict[str, list[tuple[str, int]]]) -> Report:
    """The menu report from (node, caller turns, no-match, no-input) and, per node, every
    (input, count) it did not match."""
    table: list[list[Any]] = []
    for n, turns, nm, ni in rows:
        top = sorted(phrases.get(n, []), key=lambda tc: (-tc[1], tc[0]))[:PHRASES_PER_NODE]
        said_list = "; ".join(f"{_phrase(t)} ({c})" for t, c in top)
        table.append([n, turns, nm, pct(nm, turns), ni, pct(ni, turns), said_list])
    table.sort(key=lambda r: (-(r[3] or 0), r[0]))
    turns_all = sum(r[1] for r in table)
    figures = [
        Figure("turns", "Caller turns at menus", "菜单交互次数", turns_all,
               "flow steps that handled a caller input (speech, keys or silence)"),
        Figure("no_match_rate", "No-match rate", "未匹配率",
               pct(sum(r[2] for r in table), turns_all),
               "no_match + no_match_limit steps / caller turns", "%"),
        Figure("no_input_rate", "No-input rate", "无输入率",
               pct(sum(r[4] for r in table), turns_all),
               "no_input + no_input_limit steps / caller turns", "%"),
    ]
    return Report("menu_nodes", "No-match and no-input per menu node", "菜单节点未匹配/无输入",
                  figures, ["node", "turns", "no_match", "no_match_pct", "no_input",
                            "no_input_pct", "callers_said"], table,
                  chart=[(r[0], float(r[3] or 0)) for r in table], chart_label="no-match %",
                  notes=["a node's rate = its no-match (no-input) steps / the caller turns it "
                         "handled; phrases: the most frequent inputs it did not match"])


def _phrase(summary: str) -> str:
    """A flow step's input summary as a reader wants it ("speech:hello" -> "hello")."""
    return summary[len(SPEECH):] if summary.startswith(SPEECH) else summary


def sentiment(s: Session, f: ReportFilter, ctx: Context) -> Report:
    """Sentiment of scored turns, and calls whose last scored turn was negative."""
    label = payload_text("label")
    rows = s.execute(
        select(label, func.count())
        .join(CallRow, CallRow.id == CallEventRow.call_id)
        .where(CallEventRow.type == "sentiment", *f.conditions())
        .group_by(label)
    ).all()
    last = (select(CallEventRow.call_id, func.max(CallEventRow.seq).label("seq"))
            .join(CallRow, CallRow.id == CallEventRow.call_id)
            .where(CallEventRow.type == "sentiment", *f.conditions())
            .group_by(CallEventRow.call_id).subquery())
    ended = dict(s.execute(
        select(label, func.count())
        .join(last, and_(last.c.call_id == CallEventRow.call_id,
                         last.c.seq == CallEventRow.seq))
        .group_by(label)
    ).all())
    return sentiment_report([(str(lab or ""), int(n)) for lab, n in rows],
                            {str(k or ""): int(v) for k, v in ended.items()})


def sentiment_report(rows: list[tuple[str, int]], ended: dict[str, int]) -> Report:
    """The sentiment report from (label, turns) and {label: calls whose last scored turn
    has it}."""
    rows = sorted(rows)
    scored_calls = sum(int(v) for v in ended.values())
    angry = int(ended.get("negative", 0))
    total = sum(int(n) for _, n in rows)
    table: list[list[Any]] = [[str(lab), int(n), pct(int(n), total), int(ended.get(lab, 0))]
                              for lab, n in rows]
    figures = [
        Figure("scored_turns", "Scored turns", "情绪评分次数", total, "sentiment events"),
        Figure("ended_angry", "Calls that ended angry", "以负面情绪结束的通话", angry,
               "calls whose last sentiment event is labelled negative"),
        Figure("ended_angry_rate", "Ended angry", "负面结束率", pct(angry, scored_calls),
               "calls that ended angry / calls with a sentiment event", "%"),
    ]
    return Report("sentiment", "Sentiment", "情绪分布", figures,
                  ["label", "turns", "percent", "calls_ending_so"], table,
                  chart=[(r[0], float(r[1])) for r in table], chart_label="turns")
