"""``GET /v1/alerts``: this node's active alerts and its recent raised/cleared ones (the
monitor's wall shows them live from the ``alert`` events on ``/v1/calls/events``).

Who: ``monitor`` (supervisor, admin).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.auth import Perm, require

router = APIRouter(tags=["monitor"])


@router.get("/v1/alerts", dependencies=[require(Perm.MONITOR)])
async def list_alerts(request: Request) -> dict[str, Any]:
    """Active alerts (kind, severity, subject, figure and threshold) and the recent ones,
    newest first."""
    engine = request.app.state.alerts
    if engine is None:
        return {"active": [], "recent": []}
    view: dict[str, Any] = engine.book.view()
    return view
