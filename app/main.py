"""The FastAPI application: ``create_app(settings)`` wires the process's shared objects.

The lifespan loads every heavy model once (Vosk, the intent classifier, the TTS worker) and
finalizes calls a previous process left in flight. A part that fails to load degrades the
service (keypad-only calls without ASR, no intents without a model) and says so in /readyz.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from app.api import calls as calls_api
from app.api import health, phone, webrtc
from app.api.errors import install_error_handlers
from app.call.bus import EventBus
from app.call.manager import CallManager, Hotline
from app.call.queues import QueueBoard
from app.call.session import CallDeps
from app.events import utc_now
from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.log import get_logger
from app.settings import Settings
from app.storage.db import Database
from app.storage.repository import CallRepository

T = TypeVar("T")


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _hotlines(flows: dict[str, Any]) -> dict[str, Hotline]:
    hotlines: dict[str, Hotline] = {}
    for flow in flows.values():
        for number in flow.hotline_numbers:
            hotlines[number] = Hotline(
                number=number, flow_id=flow.id, locales=tuple(flow.locales),
                default_locale=flow.default_locale, recording=bool(flow.recording),
            )
    return hotlines


async def _load_speech(app: FastAPI, settings: Settings) -> None:
    from app.asr.engine import AsrEngine
    from app.asr.registry import ModelRegistry
    from app.tts.service import TtsService

    state = app.state
    state.asr = AsrEngine(settings, ModelRegistry(settings.models_dir))
    state.asr_problems = await asyncio.to_thread(state.asr.load)
    for locale, reason in state.asr_problems.items():
        state.log.warning("asr_model_unavailable", locale=locale, reason=reason,
                          effect="calls in this locale are keypad-only")
    state.tts = TtsService(settings)
    state.tts_problem = None
    try:
        await state.tts.start()
    except Exception as exc:  # the server still starts; /readyz reports it
        state.tts_problem = f"speech synthesis failed to start: {exc}"
        state.log.error("tts_unavailable", reason=state.tts_problem)


async def _load_nlu(app: FastAPI, settings: Settings) -> None:
    from app.nlu.service import NluService

    state = app.state
    state.nlu_problem = None
    try:
        state.nlu = NluService(settings)
    except ValueError as exc:  # a bad intents file: named with file and line
        state.nlu, state.nlu_problem = None, f"intents not loaded: {exc}"
        state.log.error("intents_unavailable", reason=state.nlu_problem)
        return
    if settings.intent_train_on_start:
        try:
            await asyncio.to_thread(state.nlu.ensure_trained)
        except Exception as exc:  # reported, calls go on without intents
            state.nlu_problem = f"intent training failed: {exc}"
    problem = await asyncio.to_thread(state.nlu.load)
    state.nlu_problem = state.nlu_problem or problem
    if state.nlu_problem:
        state.log.error("intents_unavailable", reason=state.nlu_problem)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    state = app.state
    state.log = get_logger()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    state.db = Database.from_settings(settings)
    await asyncio.to_thread(state.db.migrate)
    state.repo = CallRepository(state.db)
    interrupted = await asyncio.to_thread(state.repo.finalize_interrupted, utc_now())
    if interrupted:
        state.log.warning("calls_finalized_after_restart", count=len(interrupted),
                          call_ids=interrupted)
    await _load_speech(app, settings)
    await _load_nlu(app, settings)
    catalog = state.nlu.catalog if state.nlu is not None else None
    state.flows = load_flows(settings.flows_dir, catalog.names() if catalog else None)
    # relative webhook URLs in flows (the demo order service) resolve against this server
    state.http = httpx.AsyncClient(base_url=f"http://{_local(settings.host)}:{settings.port}")
    state.calls = CallManager(
        CallDeps(
            settings=settings, repo=state.repo, bus=state.bus,
            engine=FlowEngine(state.flows, catalog), tts=state.tts, asr=state.asr,
            nlu=state.nlu if not state.nlu_problem else None, http=state.http,
            queues=QueueBoard(),
        ),
        _hotlines(state.flows),
    )
    state.log.info("ready", hotlines=sorted(state.calls.hotlines),
                   asr_locales=sorted(state.asr.available_locales()))
    try:
        yield
    finally:
        await state.calls.shutdown()
        await state.tts.aclose()
        await state.asr.aclose()
        await state.http.aclose()
        await asyncio.to_thread(state.db.dispose)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Hotline",
        version="0.1.0",
        description="AI voice front-end for customer-service hotlines.",
        lifespan=lifespan,
        max_body_size=settings.http_max_body_bytes,  # 413 before a larger body is read
    )
    install_error_handlers(app)
    app.state.settings = settings
    app.state.bus = EventBus()
    app.state.run_blocking = run_blocking
    app.include_router(health.router)
    app.include_router(calls_api.router)
    app.include_router(webrtc.router)
    app.include_router(phone.router)
    from app.demo.orders import router as demo_orders

    app.include_router(demo_orders, prefix="/demo/orders", tags=["demo"])
    return app


def project_path(*parts: str) -> Path:
    return Path(__file__).resolve().parent.parent.joinpath(*parts)
