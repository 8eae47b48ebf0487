"""A supervisor joins a call that is talking to an agent: listen, whisper, barge.

``POST /v1/calls/{id}/supervise`` (``mode`` and the supervisor's WebRTC SDP offer; the
server's answer back, as the agent desk's leg does), ``POST .../supervise/mode`` to change
mode, ``POST .../supervise/leave`` to leave. Who: ``calls:listen`` (supervisor, admin);
signed-in browsers send the CSRF token and come from an allowed Origin (``require``). One
supervisor per call: a second gets 409 naming the first. The join and each mode change are
audited before they apply (an audit that cannot be written refuses the request); the end of
the session (left, leg dropped, talk over) is audited as it happens. The call's record gets
``supervisor_joined`` / ``supervisor_mode`` / ``supervisor_left``.

Several nodes: the call's talk is on the node holding it. A request that lands elsewhere is
forwarded there over the routing bus (``LiveRouting.on_supervise``, installed by ``serve``);
that node makes the supervisor's media leg (its own ICE candidates) and writes the audits.
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from app.api.desk import handoff_service
from app.auth import CurrentPrincipal, Perm, Principal, Role, client_ip, require
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
        raise DeskError(409, f"call {call_id} is not talking to an agent here")
    return talk


def _mine(live: LiveRouting, call_id: str, who: Principal) -> Supervision:
    supervision: Supervision | None = _talk(live, call_id).supervision
    if supervision is None:
        raise DeskError(409, f"call {call_id} has no supervisor")
    if supervision.supervisor != who.name:
        raise DeskError(409, f"call {call_id} is supervised by {supervision.supervisor}")
    return supervision


class _Here:
    """A supervisor's request done on this node (the one holding the call's talk)."""

    def __init__(self, state: Any, who: Principal, ip: str | None) -> None:
        self.state, self.who, self.ip = state, who, ip
        self.live: LiveRouting = state.handoff.live

    async def audit(self, action: str, call_id: str, after: dict[str, Any],
                    before: dict[str, Any] | None = None) -> None:
        await self.state.auth.audit(self.who, action, f"call:{call_id}", before=before,
                                    after=after, ip=self.ip)

    async def join(self, call_id: str, mode: Mode, sdp: str) -> dict[str, Any]:
        live = self.live
        talk = _talk(live, call_id)
        if talk.supervision is not None:
            raise DeskError(409, f"call {call_id} is supervised by "
                            f"{talk.supervision.supervisor} (one supervisor per call)")
        if live.accept_web is None:
            raise DeskError(503, "WebRTC audio is not available")
        leg, answer = await live.accept_web(sdp)
        try:
            if live.talks.get(call_id) is not talk:
                raise DeskError(409, f"call {call_id} ended its talk while audio was set up")
            await self.audit("call.supervise.start", call_id,
                             {"mode": mode, "agent_id": talk.agent.id})

            async def audit_end(after: dict[str, Any]) -> None:
                await self.audit("call.supervise.end", call_id, after)

            supervision = talk.supervise(self.who.name, mode, leg, audit_end)
        except BaseException:
            with contextlib.suppress(Exception):
                await leg.close()
            raise
        return {"type": "answer", "sdp": answer, **supervision.state()}

    async def mode(self, call_id: str, mode: Mode) -> dict[str, Any]:
        supervision = _mine(self.live, call_id, self.who)
        if mode != supervision.mode:
            await self.audit("call.supervise.mode", call_id, {"mode": mode},
                             before={"mode": supervision.mode})
            supervision.set_mode(mode)
        return supervision.state()

    async def leave(self, call_id: str) -> dict[str, Any]:
        supervision = _mine(self.live, call_id, self.who)
        state = supervision.state()
        await supervision.close("left")
        return state | {"left": True}


async def _run(request: Request, who: Principal, call_id: str, method: str,
               args: dict[str, Any]) -> dict[str, Any]:
    """``method`` of ``_Here`` on this node, or forwarded to the node holding the call."""
    live = handoff_service(request, "supervision is").live
    ip = client_ip(request)
    try:
        node = await live.remote.held_by(call_id) if live.remote is not None else None
        if node is not None and live.remote is not None:
            wire = {"call_id": call_id, "name": who.name, "via": who.via, "ip": ip,
                    "role": who.role.value if who.role else None, **args}
            return dict(await live.remote.forward(node, f"supervise_{method}", wire))
        here = _Here(request.app.state, who, ip)
        result: dict[str, Any] = await getattr(here, method)(call_id, **args)
        return result
    except DeskError as exc:
        raise HTTPException(exc.status, exc.detail) from exc


def serve(state: Any) -> None:
    """Take supervisors' requests forwarded by other nodes (several nodes)."""
    handoff = getattr(state, "handoff", None)
    if handoff is None:
        return

    async def forwarded(method: str, args: dict[str, Any]) -> Any:
        name = method.removeprefix("supervise_")
        if name not in ("join", "mode", "leave"):
            raise DeskError(400, f"unknown supervisor request {method!r}")
        role = args.pop("role", None)
        who = Principal(name=str(args.pop("name")), role=Role(role) if role else None,
                        perms=frozenset({Perm.CALLS_LISTEN}),
                        via=cast(Any, str(args.pop("via", "session"))))
        here = _Here(state, who, cast(str | None, args.pop("ip", None)))
        call_id = str(args.pop("call_id"))
        if "mode" in args:
            args["mode"] = ModeIn.model_validate({"mode": args["mode"]}).mode
        return await getattr(here, name)(call_id, **args)

    handoff.live.on_supervise = forwarded


@router.post("/{call_id}/supervise")
async def join(call_id: str, body: Join, request: Request, who: CurrentPrincipal
               ) -> dict[str, Any]:
    """Join the call in ``mode`` with a WebRTC offer; the answer comes back."""
    return await _run(request, who, call_id, "join", {"mode": body.mode, "sdp": body.sdp})


@router.post("/{call_id}/supervise/mode")
async def change_mode(call_id: str, body: ModeIn, request: Request, who: CurrentPrincipal
                      ) -> dict[str, Any]:
    """Listen, whisper to the agent, or barge in (both hear the supervisor)."""
    return await _run(request, who, call_id, "mode", {"mode": body.mode})


@router.post("/{call_id}/supervise/leave")
async def leave(call_id: str, request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    return await _run(request, who, call_id, "leave", {})
