"""The configuration page: ``/console/config`` (flows with their ``check`` results, routing
hotlines and rules, and the routing ``explain`` preview: number, caller, time -> who would
ring), ``/v1/config/flows/check`` (check an uploaded flow file without installing it) and
``/v1/config/routing`` (replace the routing with an edited YAML document: checked by the same
checker as ``hotline routing check``, errors with line and reason, saved in one
transaction, audited with the rules before and after).

Who: ``config:write`` (admin). Flow versions (upload, activate, roll back): ``flow_admin``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from app.api.console_ui import render
from app.auth import CurrentPrincipal, Perm, client_ip, require
from app.flows.loader import check_files, check_text, flow_files
from app.nlu.intents import IntentFileError, load_intents
from app.routing.engine import CompiledRouting, route
from app.routing.explain import render_plan
from app.routing.loader import check_text as check_text_routing
from app.routing.loader import dump_yaml
from app.routing.plan import RouteRequest
from app.routing.roster import roster_state
from app.routing.store import RoutingStore
from app.settings import Settings

router = APIRouter(tags=["config"])
Text = Annotated[str, Query(max_length=64)]
MAX_FLOW_CHARS = 200_000


class RoutingUpload(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_FLOW_CHARS)


class FlowUpload(BaseModel):
    filename: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    text: str = Field(max_length=MAX_FLOW_CHARS)


def _intents(settings: Settings) -> set[str] | None:
    try:
        return load_intents(settings.intents_dir).names()
    except IntentFileError:
        return None


def flows_report(settings: Settings) -> dict[str, Any]:
    """Every flow file with its check results (file:line: reason)."""
    files = flow_files(settings.flows_dir)
    flows, errors = check_files(files, _intents(settings), voices=settings.tts_voices)
    return {"flows": [{"id": f.id, "numbers": list(f.hotline_numbers),
                       "locales": list(f.locales)} for f in flows.values()],
            "errors": [{"file": e.file.name, "line": e.line, "reason": e.reason}
                       for e in errors], "files": [p.name for p in files]}


def routing_report(db: Any) -> dict[str, Any]:
    config = RoutingStore(db).load()
    if config is None:
        return {"hotlines": []}
    return {"hotlines": [
        {"number": h.number, "flow": h.flow,
         "rules": [{"name": r.name,
                    "when": r.when.model_dump(mode="json", exclude_defaults=True),
                    "target": r.target.model_dump(mode="json", exclude_defaults=True)}
                   for r in h.rules]}
        for h in config.hotlines]}


def explain_plan(db: Any, number: str, caller: str, at: datetime, locale: str,
                 intent: str | None) -> str:
    """What ``hotline routing explain`` prints for this call (every agent available)."""
    config = RoutingStore(db).load()
    if config is None:
        raise ValueError("no routing in the database: import a routing file first")
    request = RouteRequest(call_id="explain", hotline_number=number, caller_number=caller,
                           locale=locale, intent=intent)
    plan = route(request, roster_state(config, None, at), CompiledRouting(config), at)
    return render_plan(plan)


@router.get("/console/config", dependencies=[require(Perm.CONFIG_WRITE)],
            response_class=HTMLResponse, include_in_schema=False)
async def config_page(request: Request, who: CurrentPrincipal, number: Text = "",
                      caller: Text = "", at: Text = "", locale: Text = "zh",
                      intent: Text = "") -> Response:
    state = request.app.state
    settings: Settings = state.settings
    flows = await asyncio.to_thread(flows_report, settings)
    try:
        routing = await asyncio.to_thread(routing_report, state.db)
    except ValueError as exc:
        routing = {"hotlines": [], "error": str(exc)}
    plan, problem = None, None
    if number:
        try:
            when = _local_time(at)
            plan = await asyncio.to_thread(explain_plan, state.db, number, caller, when,
                                           locale, intent or None)
        except ValueError as exc:
            problem = str(exc)
    config = await asyncio.to_thread(RoutingStore(state.db).load) if "error" not in routing \
        else None
    return render(request, "config.html", who, flows=flows, routing=routing, plan=plan,
                  routing_yaml=dump_yaml(config) if config is not None else "",
                  problem=problem, form={"number": number, "caller": caller, "at": at,
                                         "locale": locale, "intent": intent})


def _local_time(text: str) -> datetime:
    """A ``datetime-local`` value (China time when it has no offset); now when empty."""
    if not text:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time must be ISO 8601 (2026-12-01T10:00), got {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo("Asia/Shanghai"))


def _rules(config: Any) -> dict[str, Any]:
    """What the audit log keeps of a routing: each hotline's rules, in order."""
    if config is None:
        return {}
    return {h.number: [{"name": r.name,
                        "when": r.when.model_dump(mode="json", exclude_defaults=True),
                        "target": r.target.model_dump(mode="json", exclude_defaults=True)}
                       for r in h.rules] for h in config.hotlines}


@router.post("/v1/config/routing", dependencies=[require(Perm.CONFIG_WRITE)])
async def save_routing(body: RoutingUpload, request: Request,
                       who: CurrentPrincipal) -> dict[str, Any]:
    """Replace the routing with ``text`` (YAML, as ``hotline routing export`` writes it):
    422 with every error (line, reason) and nothing saved, or the saved summary."""
    state = request.app.state
    settings: Settings = state.settings
    intents = await asyncio.to_thread(_intents, settings)
    config, errors = await asyncio.to_thread(check_text_routing, body.text,
                                             Path("routing.yaml"), intents)
    if errors or config is None:
        raise HTTPException(422, [{"loc": ["body", "text"], "type": "value_error",
                                   "msg": f"routing.yaml:{e.line}: {e.reason}"}
                                  for e in errors[:20]])
    store = RoutingStore(state.db)
    before = await asyncio.to_thread(store.load)
    summary = await asyncio.to_thread(store.save, config, f"console:{who.name}")
    await state.auth.audit(who, "routing.save", "routing", before=_rules(before),
                           after=_rules(config), ip=client_ip(request))
    return {"saved": summary.line() if summary else ""}


@router.post("/v1/config/flows/check", dependencies=[require(Perm.CONFIG_WRITE)])
async def check_flow(body: FlowUpload, request: Request) -> dict[str, Any]:
    """Check a flow file as ``hotline flows check`` would (nothing is installed): its
    errors with line and reason, or the flow it defines."""
    settings: Settings = request.app.state.settings
    if not body.filename.endswith((".yaml", ".yml")):
        raise HTTPException(422, [{"loc": ["body", "filename"], "type": "value_error",
                                   "msg": "a flow file ends in .yaml or .yml"}])
    intents = await asyncio.to_thread(_intents, settings)
    flow, errors = await asyncio.to_thread(check_text, body.text, Path(body.filename),
                                           intents, settings.tts_voices)
    return {"ok": not errors and flow is not None,
            "flow": None if flow is None else {"id": flow.id,
                                               "numbers": list(flow.hotline_numbers)},
            "errors": [{"file": body.filename, "line": e.line, "reason": e.reason}
                       for e in errors]}
