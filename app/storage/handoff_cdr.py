"""The human side of the CDR, computed from the call's event log (``app.handoff`` events).

Routing rule and target (the first decision), the queue (the last group, first entry and
last exit), the time spent waiting (every stretch from joining a queue to leaving it other
than by overflow; a call still queued at its end waited until then), each device rung with
its outcome, who answered and when, talk and hold time, transfers, abandonment, callbacks.
The wrap-up comes after the call ended (``CallRepository.add_wrap_up``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app.storage.models import CallEventRow, CallRow

EVENT_TYPES = (
    "routing_decision", "queue_joined", "queue_left", "queue_exit", "ring", "agent_connected",
    "agent_disconnected", "agent_transfer", "callback_queued", "callback_done", "wrap_up",
)


def _seconds(later: datetime, earlier: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def apply_handoff(row: CallRow, events: Sequence[CallEventRow], outcome: str,
                  ended_at: datetime) -> None:
    """Fill the handoff columns of ``row`` from ``events`` (ordered by seq)."""
    if not any(e.type in EVENT_TYPES for e in events):
        row.abandoned = outcome == "abandoned"
        row.callback_requested = outcome == "callback_requested"
        return
    since: datetime | None = None
    wait_s = talk_s = hold_s = 0.0
    rings: list[dict[str, Any]] = []
    transfers: list[dict[str, Any]] = []
    abandoned = outcome == "abandoned"
    for ev in events:
        p = ev.payload
        if ev.type == "routing_decision" and row.routing_target is None:
            row.routing_rule = str(p.get("rule") or p.get("source") or "")[:64] or None
            row.routing_target = str(p.get("target") or "none")[:128]
        elif ev.type == "queue_joined":
            row.queue_group = str(p.get("group", ""))[:64] or row.queue_group
            row.queued_at = row.queued_at or ev.at
            since = since or ev.at
        elif ev.type in ("queue_left", "queue_exit"):
            reason = p.get("reason")
            if ev.type == "queue_left" and reason == "overflow":
                continue
            if since is not None:
                wait_s += _seconds(ev.at, since)
                since = None
            row.queue_left_at = ev.at
            abandoned = abandoned or reason == "abandoned"
        elif ev.type == "ring":
            rings.append({k: p.get(k) for k in ("agent_id", "device", "outcome", "ring_s")})
        elif ev.type == "agent_connected" and row.answered_by is None:
            row.answered_by = str(p.get("agent_id", ""))[:64]
            row.agent_answered_at = ev.at
        elif ev.type == "agent_disconnected":
            talk_s += float(p.get("talk_s") or 0.0)
            hold_s += float(p.get("hold_s") or 0.0)
        elif ev.type == "agent_transfer" and p.get("outcome") != "started":
            transfers.append({k: p.get(k) for k in ("agent_id", "mode", "target", "outcome")})
        elif ev.type == "callback_queued":
            row.callback_requested = True
            row.callback_status = row.callback_status or "queued"
        elif ev.type == "callback_done":
            row.callback_status = "done" if p.get("outcome") == "answered" else "failed"
            row.callback_done_at = ev.at
        elif ev.type == "wrap_up":
            apply_wrap_up(row, p)
    if since is not None:
        wait_s += _seconds(ended_at, since)
    row.wait_s = round(wait_s, 3) if row.queued_at is not None else None
    row.ring_attempts = rings or None
    row.talk_s = round(talk_s, 3) if row.answered_by else None
    row.hold_s = round(hold_s, 3) if row.answered_by else None
    row.transfers = transfers or None
    row.abandoned = abandoned and row.answered_by is None
    row.callback_requested = bool(row.callback_requested) or outcome == "callback_requested"


def apply_wrap_up(row: CallRow, payload: dict[str, Any]) -> None:
    row.disposition = str(payload.get("disposition", ""))[:64] or None
    row.wrap_notes = str(payload.get("notes") or "") or None
    row.bot_should_handle = bool(payload.get("bot_should_handle", False))
    intent = payload.get("intent")
    row.bot_intent = str(intent)[:64] if intent else None
