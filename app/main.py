"""The FastAPI application: ``create_app(settings)`` serves what ``build_services`` wires.

The lifespan loads every heavy model once (``app.services.build_services``: Vosk, the intent
classifier, the TTS workers), finalizes calls a previous process left in flight and replays
spooled call records. A part that fails to load degrades the service (keypad-only calls
without ASR, no intents without a model) and says so in /readyz.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI

from app.api import (
    accounts,
    agent_page,
    alerts,
    calendar_admin,
    chat,
    chat_page,
    config_pages,
    desk,
    flow_admin,
    health,
    intents_admin,
    landing,
    phone,
    prompts,
    webrtc,
)
from app.api import agent_state as agent_state_api
from app.api import auth as auth_api
from app.api import calls as calls_api
from app.api import console as console_api
from app.api import inbox as inbox_api
from app.api import monitor as monitor_api
from app.api import reports as reports_api
from app.api import supervise as supervise_api
from app.api.errors import install_error_handlers
from app.auth import AuthService
from app.auth.deps import check_access_declared, public
from app.auth.ratelimit import CallerPasses, RateLimits
from app.flows.admin_calendar import FILE_NAME as ADMIN_CALENDAR_FILE
from app.flows.admin_calendar import use_admin_calendar
from app.log import get_logger
from app.metrics import EVENT_LOOP_TASKS
from app.services import build_services
from app.settings import Settings

T = TypeVar("T")


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    state = app.state
    state.log = get_logger()
    services = await build_services(settings, http_base_url=getattr(state, "base_url", None),
                                    **getattr(state, "services_options", {}))
    state.services = services
    state.db, state.repo, state.bus = services.db, services.repo, services.bus
    state.asr, state.tts, state.flows = services.asr, services.tts, services.flows
    state.nlu = services.nlu if "intents" not in services.degraded else None
    state.http, state.calls = services.http, services.calls
    state.auth = AuthService(settings, services.db, limits=state.limits)
    state.sip = services.sip  # started by build_services when sip_enabled
    state.handoff = services.handoff
    supervise_api.serve(state)  # several nodes: supervisors' requests from other nodes
    state.alerts = services.alerts
    loop = asyncio.get_running_loop()
    EVENT_LOOP_TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))
    try:
        await first_admin(state.auth)
        yield
    finally:
        await services.aclose()


async def first_admin(auth: AuthService) -> None:
    """With no user at all, create the administrator; a generated password is printed once
    to the terminal (stderr), never to the logs."""
    created = await auth.ensure_first_admin()
    if created is None or created[1] is None:
        return
    user, password = created
    rule = "=" * 72
    sys.stderr.write(
        f"\n{rule}\n Hotline: no user existed, so the administrator was created.\n"
        f"   user:     {user.name}\n   password: {password}\n"
        " This password is shown only now. Sign in and change it, or set it with\n"
        f" `hotline users passwd {user.name}`.\n{rule}\n\n"
    )
    sys.stderr.flush()


def create_app(settings: Settings, *, base_url: str | None = None,
               services_options: dict[str, Any] | None = None) -> FastAPI:
    """``base_url``: where this server really listens, when it is not settings.host:port
    (relative webhook URLs in flows resolve against it). ``services_options``: passed to
    ``build_services`` (tests lend a loaded recognizer or classifier, or a clock)."""
    from fastapi_offline import FastAPIOffline  # /docs assets served locally, no CDN

    app = FastAPIOffline(
        title="Hotline",
        version="0.1.0",
        description="AI voice front-end for customer-service hotlines.",
        lifespan=lifespan,
        max_body_size=settings.http_max_body_bytes,  # 413 before a larger body is read
    )
    install_error_handlers(app)
    app.state.settings = settings
    use_admin_calendar(settings.data_dir / ADMIN_CALENDAR_FILE)  # flows' and routing's
    app.state.limits = RateLimits.for_settings(settings)  # a bad rate string fails here
    app.state.caller_passes = CallerPasses(ttl_s=settings.call_max_duration_s + 300)
    app.state.base_url = base_url
    app.state.services_options = dict(services_options or {})
    app.state.run_blocking = run_blocking
    app.include_router(health.router)
    app.include_router(auth_api.router)
    app.include_router(accounts.router)
    app.include_router(calls_api.router)
    app.include_router(reports_api.router)
    app.include_router(console_api.router)
    app.include_router(console_api.static)
    app.include_router(monitor_api.router)
    app.include_router(agent_state_api.router)
    app.include_router(supervise_api.router)
    app.include_router(alerts.router)
    app.include_router(inbox_api.router)
    app.include_router(intents_admin.router)
    app.include_router(config_pages.router)
    app.include_router(flow_admin.router)
    app.include_router(calendar_admin.router)
    app.include_router(prompts.router)
    app.include_router(webrtc.router)
    app.include_router(phone.router)
    app.include_router(desk.router)
    app.include_router(agent_page.router)
    app.include_router(landing.router, dependencies=[public(rate="public")])
    # web chat: open to visitors; each chat's socket needs the chat's own token, and chat
    # traffic has its own per-IP and per-chat limits (app.api.chat)
    app.include_router(chat.router, dependencies=[public(own_origins=True)])
    app.include_router(chat_page.router, dependencies=[public(rate="public")])
    app.add_middleware(chat.ChatCors, allowed_origins=settings.chat_allowed_origins)
    from app.demo.orders import router as demo_orders

    # the demo order service is the demo flows' webhook target: open, like a partner's API
    app.include_router(demo_orders, prefix="/demo/orders", tags=["demo"],
                       dependencies=[public()])
    check_access_declared(app)
    return app


def project_path(*parts: str) -> Path:
    return Path(__file__).resolve().parent.parent.joinpath(*parts)
