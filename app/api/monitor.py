"""The live monitor: ``/console/monitor`` (the page) and ``/v1/monitor`` (a snapshot of the
active calls, the queues and the agents' states; a supervisor forces an agent's state with
``app.api.agent_state``). The page follows every call's events live over the
``/v1/calls/events`` WebSocket and refreshes the queues from the snapshot.

Who: ``monitor`` (supervisor, admin). Phone numbers masked as for the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.api.calls import masked_for
from app.api.console_ui import render
from app.auth import CurrentPrincipal, Perm, require
from app.events import utc_now

router = APIRouter(tags=["monitor"])


def call_summary(call_id: str, info: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
    """What the wall shows of one live call, from its events so far."""
    summary: dict[str, Any] = {
        "call_id": call_id, "hotline_number": info.hotline_number,
        "caller_number": info.caller_number, "channel": info.channel, "locale": info.locale,
        "started_at": history[0]["at"] if history else None, "node": None, "intent": None,
        "confidence": None, "sentiment": None, "queue": None, "queued_at": None,
        "last_said": None, "agent": None, "supervisor": None, "supervise_mode": None}
    for event in history:
        kind = event.get("type")
        if kind == "node_entered":
            summary["node"] = event.get("node")
        elif kind == "intent":
            summary["intent"], summary["confidence"] = event.get("intent"), event.get(
                "confidence")
        elif kind == "sentiment":
            summary["sentiment"] = event.get("label")
        elif kind == "transfer":
            summary["queue"], summary["queued_at"] = event.get("queue"), event.get("at")
        elif kind in ("agent_connected", "agent_disconnected"):
            summary["agent"] = event.get("agent_id") if kind == "agent_connected" else None
        elif kind in ("supervisor_joined", "supervisor_mode", "supervisor_left"):
            on = kind != "supervisor_left"
            summary["supervisor"] = event.get("supervisor") if on else None
            summary["supervise_mode"] = event.get("mode") if on else None
        elif kind == "transcript" and event.get("is_final") and event.get("speaker",
                                                                        "caller") == "caller":
            summary["last_said"] = event.get("text")
    return summary


def queue_rows(waiting: dict[str, list[str]], calls: dict[str, dict[str, Any]],
               now: datetime) -> list[dict[str, Any]]:
    """Each queue: callers waiting and the longest wait (since the caller's transfer)."""
    rows = []
    for queue, members in sorted(waiting.items()):
        waits = []
        for call_id in members:
            since = calls.get(call_id, {}).get("queued_at")
            if since:
                waits.append((now - datetime.fromisoformat(since)).total_seconds())
        rows.append({"queue": queue, "waiting": len(members), "callers": members,
                     "longest_wait_s": round(max(waits), 1) if waits else 0.0})
    return rows


def snapshot(state: Any, now: datetime) -> dict[str, Any]:
    calls: dict[str, dict[str, Any]] = {}
    for call_id in state.calls.active():
        session = state.calls.session(call_id)
        if session is not None:
            calls[call_id] = call_summary(call_id, session.info, list(session.events.history))
    waiting = state.calls.deps.queues.waiting()
    return {"at": now.isoformat(), "calls": list(calls.values()),
            "queues": queue_rows(waiting, calls, now), "agents": agent_rows(state)}


def agent_rows(state: Any) -> list[dict[str, Any]]:
    """Each agent of the routing and their state now (none when routing is not started)."""
    handoff = getattr(state, "handoff", None)
    if handoff is None:
        return []
    live = handoff.live
    return [{key: value for key, value in live.state_of(agent_id).items()
             if key in ("agent_id", "state", "chosen", "away_reason", "calls")}
            for agent_id in sorted(live.agent_ids())]


@router.get("/v1/monitor", dependencies=[require(Perm.MONITOR)])
async def monitor_state(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    """Active calls (node, intent, sentiment, queue) and queues (waiting, longest wait)."""
    handoff = getattr(request.app.state, "handoff", None)
    if handoff is not None:  # several nodes: the agents' states as stored now
        await handoff.live.refresh()
    body: dict[str, Any] = masked_for(who, request.app.state.settings,
                                      snapshot(request.app.state, utc_now()))
    return body


@router.get("/console/monitor", dependencies=[require(Perm.MONITOR)],
            response_class=HTMLResponse, include_in_schema=False)
async def monitor_page(request: Request, who: CurrentPrincipal) -> Response:
    engine = request.app.state.alerts
    active = engine.book.view()["active"] if engine is not None else []
    return render(request, "monitor.html", who, alerts=active)
