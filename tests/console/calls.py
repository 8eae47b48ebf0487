"""A small day of calls, written through the real repository, whose report figures can be
checked by hand (see the table in ``DAY``'s docstring)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.storage import CallRepository

SHANGHAI = timedelta(hours=8)
DAY_START = datetime(2026, 11, 26, tzinfo=UTC) - SHANGHAI  # 2026-11-26 00:00 in Shanghai
SALES, SUPPORT = "4008001234", "4008005678"


def _step(node: str, decision: str, said: str = "") -> dict[str, Any]:
    return {"type": "flow_step", "flow": "main", "node": node, "decision": decision,
            "input": said}


# call id, number, locale, local start (hh, mm), outcome, [(seconds after start, event)]
DAY: list[tuple[str, str, str, tuple[int, int], str, list[tuple[float, dict[str, Any]]]]] = [
    ("c1", SALES, "zh", (9, 10), "completed", [
        (1, _step("menu", "option", "speech:查订单")),
        (1, {"type": "transcript", "text": "查订单", "is_final": True, "confidence": 0.9}),
        (1, {"type": "intent", "intent": "order_status", "confidence": 0.9}),
        (2, {"type": "sentiment", "score": 0.5, "label": "positive"}),
    ]),
    ("c2", SALES, "zh", (9, 40), "abandoned", [
        (1, {"type": "transcript", "text": "我要退货啊", "is_final": True, "confidence": 0.8}),
        (1, {"type": "intent", "intent": None, "confidence": 0.2, "reason": "low_confidence"}),
        (1, _step("menu", "no_match", "speech:我要退货啊")),
        (5, {"type": "transcript", "text": "退货", "is_final": True, "confidence": 0.9}),
        (5, {"type": "intent", "intent": "refund", "confidence": 0.45}),
        (5, _step("menu", "option", "speech:退货")),
        (10, {"type": "transfer", "queue": "sales", "reason": "no_match"}),
    ]),  # ends 13 s after start: waited 3 s -> a short abandon
    ("c3", SUPPORT, "en", (10, 5), "abandoned", [
        (3, _step("menu", "no_input", "no_input")),
        (5, {"type": "sentiment", "score": -0.7, "label": "negative"}),
        (10, {"type": "transfer", "queue": "support", "reason": "caller_asked"}),
    ]),  # ends 40 s after start: waited 30 s
    ("c4", SALES, "zh", (10, 20), "completed", [
        (3, {"type": "sentiment", "score": -0.6, "label": "negative"}),
        (6, {"type": "sentiment", "score": 0.0, "label": "neutral"}),
        (8, {"type": "transfer", "queue": "support", "reason": "caller_asked"}),
    ]),
    ("c5", SALES, "zh", (11, 0), "caller_hangup", [
        (2, {"type": "transcript", "text": "我要退货啊", "is_final": True, "confidence": 0.7}),
        (2, _step("menu", "no_match", "speech:我要退货啊")),
    ]),
]
ENDS_AFTER_S = {"c1": 30, "c2": 13, "c3": 40, "c4": 60, "c5": 20}


def write_day(repo: CallRepository, day_start: datetime = DAY_START, prefix: str = "") -> None:
    """The day's calls through the repository (ids ``prefix`` + c1..c5)."""
    for name, number, locale, (hh, mm), outcome, events in DAY:
        call_id = prefix + name
        start = day_start + timedelta(hours=hh, minutes=mm)
        repo.start_call(call_id, number, "13800138000", "sip", locale, start, "main")
        started = {"type": "call_started", "hotline_number": number,
                   "caller_number": "13800138000", "channel": "sip", "locale": locale,
                   "flow_id": "main"}
        repo.append_events(call_id, [(started, start)] + [
            (event, start + timedelta(seconds=after)) for after, event in events])
        repo.end_call(call_id, outcome, start + timedelta(seconds=ENDS_AFTER_S[name]))
