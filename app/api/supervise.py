"""A supervisor joins a call that is talking to an agent: listen, whisper, barge.

``POST /v1/calls/{id}/supervise`` (``mode`` and the supervisor's WebRTC SDP offer; the
server's answer back, as the agent desk's leg does), ``POST .../supervise/mode`` to change
mode, ``POST .../supervise/leave`` to leave. Who: ``calls:listen`` (supervisor, admin);
signed-in browsers send the CSRF token and come from an allowed Origin (``require``). One
supervisor per call: a second gets 409 naming the first. The join and each mode change are
audited before they apply (an audit that cannot be written refuses the request); the end of
the session (left, leg dropped, talk over) is audited as it happens. The call's record gets
``supervisor_joined`` / ``supervisor_mode`` / ``supervisor_left``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from app.api.desk import handoff_service
from app.auth import CurrentPrincipal, Perm, Principal, client_ip, require
from app.handoff.live import DeskError, LiveRouting
from app.handoff.supervise import Mode, Supervision
from app.handoff.talk import Talk

router = APIRouter(prefix="/v1/calls", tags=["supervise"],
                   dependencies=[require(Perm.CALLS_LISTEN)])


class Join(BaseModel):
    mode: Mode
    sdp: str = Field(min_length=1, max_length=64_000, description="the WebRTC SDP offer")


class ModeIn(BaseModel):
    mode: Mode


def _talk(live: LiveRouting, call_id: str) -> Talk:
    talk: Talk | None = live.talks.get(call_id)
    if talk is None:
        raise HTTPException(409, f"call {call_id} is not talking to an agent here")
    return talk


def _mine(live: LiveRouting, call_id: str, who: Principal) -> Supervision:
    supervision: Supervision | None = _talk(live, call_id).supervision
    if supervision is None:
        raise HTTPException(409, f"call {call_id} has no supervisor")
    if supervision.supervisor != who.name:
        raise HTTPException(409, f"call {call_id} is supervised by {supervision.supervisor}")
    return supervision


async def _audit(request: Request, who: Principal, action: str, call_id: str,
                 after: dict[str, Any], before: dict[str, Any] | None = None) -> None:
    await request.app.state.auth.audit(who, action, f"call:{call_id}", before=before,
                                       after=after, ip=client_ip(request))


@router.post("/{call_id}/supervise")
async def join(call_id: str, body: Join, request: Request, who: CurrentPrincipal
               ) -> dict[str, Any]:
    """Join the call in ``mode`` with a WebRTC offer; the answer comes back."""
    live = handoff_service(request, "supervision is").live
    talk = _talk(live, call_id)
    if talk.supervision is not None:
        raise HTTPException(409, f"call {call_id} is supervised by "
                            f"{talk.supervision.supervisor} (one supervisor per call)")
    if live.accept_web is None:
        raise HTTPException(503, "WebRTC audio is not available")
    try:
        leg, answer = await live.accept_web(body.sdp)
    except DeskError as exc:
        raise HTTPException(exc.status, exc.detail) from exc
    try:
        if live.talks.get(call_id) is not talk:
            raise HTTPException(409, f"call {call_id} ended its talk while audio was set up")
        await _audit(request, who, "call.supervise.start", call_id,
                     {"mode": body.mode, "agent_id": talk.agent.id})

        async def audit_end(after: dict[str, Any]) -> None:
            await _audit(request, who, "call.supervise.end", call_id, after)

        supervision = talk.supervise(who.name, body.mode, leg, audit_end)
    except DeskError as exc:
        with contextlib.suppress(Exception):
            await leg.close()
        raise HTTPException(exc.status, exc.detail) from exc
    except BaseException:
        with contextlib.suppress(Exception):
            await leg.close()
        raise
    return {"type": "answer", "sdp": answer, **supervision.state()}


@router.post("/{call_id}/supervise/mode")
async def change_mode(call_id: str, body: ModeIn, request: Request, who: CurrentPrincipal
                      ) -> dict[str, Any]:
    """Listen, whisper to the agent, or barge in (both hear the supervisor)."""
    supervision = _mine(handoff_service(request, "supervision is").live, call_id, who)
    if body.mode != supervision.mode:
        await _audit(request, who, "call.supervise.mode", call_id, {"mode": body.mode},
                     before={"mode": supervision.mode})
        supervision.set_mode(body.mode)
    return supervision.state()


@router.post("/{call_id}/supervise/leave")
async def leave(call_id: str, request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    supervision = _mine(handoff_service(request, "supervision is").live, call_id, who)
    state = supervision.state()
    await supervision.close("left")
    return state | {"left": True}
