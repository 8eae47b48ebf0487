"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and the models are loaded; says what is missing.

    Missing speech models do not make the server unready: calls then run keypad-only, and
    the body says so under ``degraded``.
    """
    state = request.app.state
    problems: dict[str, str] = {}
    degraded: dict[str, str] = {}
    db_problem = await state.run_blocking(state.db.ping)
    if db_problem:
        problems["database"] = db_problem
    for locale, reason in state.asr_problems.items():
        degraded[f"asr:{locale}"] = reason
    if state.nlu_problem:
        degraded["intents"] = state.nlu_problem
    if state.tts_problem:
        degraded["tts"] = state.tts_problem
    body: dict[str, Any] = {
        "status": "ready" if not problems else "not_ready",
        "problems": problems,
        "degraded": degraded,
        "asr_locales": sorted(state.asr.available_locales()) if state.asr else [],
        "keypad_only": not (state.asr and state.asr.available_locales()),
    }
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
