"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.auth import Perm, public, require
from app.events import utc_now
from app.flows.coverage import coverage_warning

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[public()])
async def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[public()])
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and takes writes, and recordings can be written;
    says what is missing.

    Missing speech models do not make the server unready: calls then run keypad-only, and
    the body says so under ``degraded``.
    """
    state = request.app.state
    services = state.services
    problems: dict[str, str] = {}
    db_problem = await state.run_blocking(state.db.ping)
    if db_problem is None:
        db_problem = await state.run_blocking(
            services.repo.heartbeat, services.settings.node_id, utc_now()
        )
    if db_problem:
        problems["database"] = db_problem
    if services.calls.draining:  # SIGTERM: stopping once its calls end (app.cluster.drain)
        problems["draining"] = "this node is draining before it stops: it takes no new call"
    rec_problem = await state.run_blocking(_writable, services.settings.recordings_dir)
    if rec_problem:
        problems["recordings"] = rec_problem
    degraded = dict(services.degraded)
    body: dict[str, Any] = {
        "status": "ready" if not problems else "not_ready",
        "problems": problems,
        "degraded": degraded,
        "asr_locales": sorted(state.asr.available_locales()) if state.asr else [],
        "keypad_only": not (state.asr and state.asr.available_locales()),
        "warnings": _warnings(),
        "cluster": _cluster(services),
    }
    return JSONResponse(body, status_code=200 if not problems else 503)


def _cluster(services: Any) -> dict[str, Any]:
    """This node, and the node that leads the singletons (the lost-node finalizer); leader
    None: not known right now (Redis unreachable). ``routing_bus`` (several nodes): whether
    this node hears the other nodes' routing events and desk messages now."""
    leadership = services.leadership
    handoff = services.handoff
    bus = handoff.live.bus if handoff is not None else None
    return {"node_id": services.settings.node_id,
            "leader": leadership.leader_id if leadership is not None else None,
            "leading": bool(leadership is not None and leadership.leading),
            "routing_bus": None if bus is None else
            ("subscribed" if bus.subscribed else "reconnecting")}


def _warnings() -> dict[str, str]:
    """What does not make the server unready but needs a person soon."""
    holidays = coverage_warning()
    return {"holiday_data": holidays} if holidays else {}


def _writable(folder: Path) -> str | None:
    """None when a file can be created in ``folder`` (created if missing), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        return f"cannot write recordings to {folder}: {exc.strerror or exc}"
    return None


@router.get("/metrics", dependencies=[require(Perm.METRICS_READ)])
async def metrics() -> Response:
    """Prometheus metrics: a scraper uses an API token with scope ``metrics:read``
    (``bearer_token_file`` / ``authorization`` in its scrape config)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
