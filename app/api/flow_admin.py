"""Flow versions from the console (``app.flows.versions``): upload a flow file (refused with
file, line and reason by the flows checker), list a flow's versions, activate one, roll back
to the one live before. Who: ``config:write`` (admin). Each change is audited with the
active version before and after; an activation is served at once (new calls take it; a
call in progress goes on in the new version of its flow)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, Field

from app.api.config_pages import MAX_FLOW_CHARS, _intents
from app.auth import CurrentPrincipal, Perm, client_ip, require
from app.flows.versions import FlowVersionError, FlowVersions
from app.settings import Settings

router = APIRouter(tags=["config"])
FlowId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
VersionNo = Annotated[int, Path(ge=1, le=1_000_000)]


class FlowFile(BaseModel):
    filename: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    text: str = Field(min_length=1, max_length=MAX_FLOW_CHARS)


def _versions(request: Request) -> FlowVersions:
    """The app's one ``FlowVersions`` (its lock serializes changes), with today's intents."""
    state = request.app.state
    settings: Settings = state.settings
    found: FlowVersions | None = getattr(state, "flow_versions", None)
    if found is None:
        found = FlowVersions(settings.flows_dir, settings.data_dir / "flow-versions",
                             voices=settings.tts_voices)
        state.flow_versions = found
    found.known_intents = _intents(settings)
    return found


def _refused(exc: FlowVersionError, field: str) -> HTTPException:
    problems = exc.errors or [str(exc)]
    return HTTPException(422, [{"loc": ["body", field] if field else ["path"],
                                "type": "value_error", "msg": p} for p in problems[:20]])


def _serve(request: Request, flows: dict[str, Any]) -> None:
    state = request.app.state
    state.services.use_flows(flows)
    state.flows = flows


@router.post("/v1/config/flows", dependencies=[require(Perm.CONFIG_WRITE)], status_code=201)
async def upload_flow(body: FlowFile, request: Request, who: CurrentPrincipal
                      ) -> dict[str, Any]:
    """Store a flow file as a new version (not active yet): 422 with every "file:line:
    reason" when the checker refuses it."""
    versions = _versions(request)
    try:
        version = await asyncio.to_thread(versions.upload, body.filename, body.text, who.name)
    except FlowVersionError as exc:
        raise _refused(exc, "text" if exc.errors else "filename") from None
    await request.app.state.auth.audit(who, "flow.upload", f"flow:{version.flow_id}",
                                       after=version.as_json(), ip=client_ip(request))
    return version.as_json()


@router.get("/v1/config/flows/{flow_id}/versions", dependencies=[require(Perm.CONFIG_WRITE)])
async def flow_versions(flow_id: FlowId, request: Request) -> dict[str, Any]:
    versions = _versions(request)
    found = await asyncio.to_thread(versions.versions, flow_id)
    return {"flow": flow_id, "versions": [v.as_json() for v in found]}


@router.post("/v1/config/flows/{flow_id}/versions/{version}/activate",
             dependencies=[require(Perm.CONFIG_WRITE)])
async def activate_flow(flow_id: FlowId, version: VersionNo, request: Request,
                        who: CurrentPrincipal) -> dict[str, Any]:
    """Make ``version`` the live flow file (the whole folder is checked with it first)."""
    versions = _versions(request)
    before = await asyncio.to_thread(versions.active, flow_id)
    try:
        flows = await asyncio.to_thread(versions.activate, flow_id, version, who.name)
    except FlowVersionError as exc:
        raise _refused(exc, "") from None
    _serve(request, flows)
    await request.app.state.auth.audit(who, "flow.activate", f"flow:{flow_id}",
                                       before={"active": before}, after={"active": version},
                                       ip=client_ip(request))
    return {"flow": flow_id, "active": version, "previous": before}


@router.post("/v1/config/flows/{flow_id}/rollback", dependencies=[require(Perm.CONFIG_WRITE)])
async def rollback_flow(flow_id: FlowId, request: Request,
                        who: CurrentPrincipal) -> dict[str, Any]:
    """Activate the version that was live before the current one."""
    versions = _versions(request)
    before = await asyncio.to_thread(versions.active, flow_id)
    try:
        number, flows = await asyncio.to_thread(versions.rollback, flow_id, who.name)
    except FlowVersionError as exc:
        raise _refused(exc, "") from None
    _serve(request, flows)
    await request.app.state.auth.audit(who, "flow.rollback", f"flow:{flow_id}",
                                       before={"active": before}, after={"active": number},
                                       ip=client_ip(request))
    return {"flow": flow_id, "active": number, "previous": before}
