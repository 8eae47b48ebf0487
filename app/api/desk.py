"""The agent desk's API (``/v1/desk``) and its live WebSocket.

Who the agent is: the signed-in user (``app/auth``: ``POST /v1/auth/login``, a session
cookie, the CSRF token in ``X-CSRF-Token`` on every state-changing request, same-origin
only) holding the ``desk`` permission (role agent, supervisor or admin), whose user name is
an agent id of the routing (``routing/*.yaml`` ``agents:``). ``current_agent`` says so, or
answers 403 naming the problem.

Offers: the desk's WebSocket (``/v1/desk/ws``) rings with the handoff packet; the desk
connects its audio (``POST .../offers/{id}/media`` with a WebRTC SDP offer, while ringing, or
with the answer), answers or declines. During a call: ``POST /v1/desk/calls/{id}/actions/{a}``
(hold, unhold, mute, unmute, hangup, transfer, complete, cancel, handback); after it, the
drafted wrap-up and the wrap-up itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.websockets import WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import HTTPConnection

from app.auth import Perm
from app.auth.deps import CurrentPrincipal, require
from app.handoff.live import DeskError
from app.handoff.service import HandoffService
from app.handoff.wrapup import Draft, dispositions_of, draft
from app.record import WrapUp, event_payload, parse_event
from app.routing.config import Target
from app.routing.presence import AwayReason

router = APIRouter(prefix="/v1/desk", tags=["desk"], dependencies=[require(Perm.DESK)])
FORWARDED = frozenset({
    "transcript", "sentiment", "intent", "prompt_played", "dtmf", "hold", "mute",
    "agent_connected", "agent_disconnected", "agent_transfer", "handback", "queue_joined",
    "queue_left", "call_ended", "callback_done", "wrap_up", "handoff_requested",
})


RECORD_CLOSE_WAIT_S = 30.0  # a wrap-up waits this long for its call's record to close


def handoff_service(conn: HTTPConnection, what: str = "the agent desk is") -> HandoffService:
    """The server's handoff service; 503 ``<what> not available`` before routing starts."""
    handoff: HandoffService | None = getattr(conn.app.state, "handoff", None)
    if handoff is None:
        raise HTTPException(503, f"{what} not available (routing not started)")
    return handoff


@dataclass(frozen=True)
class DeskAgent:
    """The signed-in user as an agent of the routing."""

    agent_id: str
    csrf_token: str | None


def agent_of(conn: HTTPConnection, who: CurrentPrincipal) -> DeskAgent:
    """The signed-in user's agent (403 when their name is no agent of the routing)."""
    handoff = handoff_service(conn)
    if who.name not in handoff.live.agent_ids():
        raise HTTPException(403, f"user {who.name!r} is not an agent of the routing (an "
                            "agent's user name is their agent id in the routing file)")
    return DeskAgent(who.name, who.csrf_token)


async def current_agent(request: Request, who: CurrentPrincipal) -> DeskAgent:
    return agent_of(request, who)


Agent = Annotated[DeskAgent, Depends(current_agent)]


def _desk_error(exc: DeskError) -> HTTPException:
    return HTTPException(exc.status, exc.detail)


def _profile(handoff: HandoffService, agent_id: str) -> dict[str, Any]:
    cfg = handoff.live.service.routing.config
    agent = cfg.agents[agent_id]
    hotlines = [{"number": h.number, "dispositions": dispositions_of(h),
                 "handback": dict(h.handback)} for h in cfg.hotlines]
    return {"agent_id": agent_id, "name": agent.name, "languages": agent.languages,
            "devices": [d.address for d in agent.devices], "hotlines": hotlines,
            "presence": handoff.live.state_of(agent_id)}


@router.get("/me")
async def me(agent: Agent, request: Request) -> dict[str, Any]:
    handoff = handoff_service(request)
    await handoff.live.refresh()  # several nodes: the state as stored now
    return {**_profile(handoff, agent.agent_id), "csrf_token": agent.csrf_token}


class Status(BaseModel):
    status: Literal["available", "away", "offline"]
    reason: AwayReason | None = None


@router.post("/status")
async def status(body: Status, agent: Agent, request: Request) -> dict[str, Any]:
    live = handoff_service(request).live
    try:
        await live.set_status(agent.agent_id, body.status, body.reason)
    except DeskError as exc:
        raise _desk_error(exc) from exc
    return live.state_of(agent.agent_id)


@router.post("/ready")
async def ready(agent: Agent, request: Request) -> dict[str, Any]:
    """Wrap-up done before its timer ends."""
    live = handoff_service(request).live
    try:
        await live.end_wrap_up(agent.agent_id)
    except DeskError as exc:
        raise _desk_error(exc) from exc
    return live.state_of(agent.agent_id)


# -- offers -----------------------------------------------------------------------------------
class Sdp(BaseModel):
    sdp: str | None = Field(default=None, max_length=64_000)


@router.post("/offers/{offer_id}/media")
async def offer_media(offer_id: str, body: Sdp, agent: Agent, request: Request
                      ) -> dict[str, Any]:
    """Connect the desk's audio while the offer rings (answering is then instant)."""
    if not body.sdp:
        raise HTTPException(422, "sdp: the desk's WebRTC offer is required")
    try:
        answer = await handoff_service(request).live.prepare_web(agent.agent_id, offer_id, body.sdp)
    except DeskError as exc:
        raise _desk_error(exc) from exc
    return {"type": "answer", "sdp": answer}


@router.post("/offers/{offer_id}/answer")
async def answer(offer_id: str, body: Sdp, agent: Agent, request: Request) -> dict[str, Any]:
    try:
        sdp = await handoff_service(request).live.answer_web(agent.agent_id, offer_id, body.sdp)
    except DeskError as exc:
        raise _desk_error(exc) from exc
    return {"status": "answered", "sdp": sdp, "type": "answer" if sdp else None}


@router.post("/offers/{offer_id}/decline")
async def decline(offer_id: str, agent: Agent, request: Request) -> dict[str, str]:
    try:
        await handoff_service(request).live.decline(agent.agent_id, offer_id)
    except DeskError as exc:
        raise _desk_error(exc) from exc
    return {"status": "declined"}


# -- in a call --------------------------------------------------------------------------------
class TransferTo(BaseModel):
    mode: Literal["blind", "warm"] = "blind"
    target: Target
    note: str = Field(default="", max_length=500)


class HandBackTo(BaseModel):
    node: str = Field(min_length=1, max_length=128)


class ChatText(BaseModel):
    """What the agent types to a chat (the chat's message size limit applies)."""

    text: str = Field(min_length=1)


ACTIONS = ("hold", "unhold", "mute", "unmute", "hangup", "transfer", "complete", "cancel",
           "handback", "message")


@router.post("/calls/{call_id}/actions/{action}")
async def call_action(call_id: str, action: str, agent: Agent, request: Request
                      ) -> dict[str, Any]:
    if action not in ACTIONS:
        raise HTTPException(404, f"no action {action!r} ({', '.join(ACTIONS)})")
    handoff = handoff_service(request)
    raw = await request.body()
    try:
        body: dict[str, Any] = {}
        if action == "transfer":
            parsed = TransferTo.model_validate_json(raw or b"{}")
            _check_target(handoff, parsed.target)
            body = {"mode": parsed.mode, "target": parsed.target, "note": parsed.note}
        elif action == "handback":
            body = {"node": HandBackTo.model_validate_json(raw or b"{}").node}
        elif action == "message":
            body = {"text": _chat_text(request, raw)}
        result = await handoff.live.control(agent.agent_id, call_id, action, body)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from exc
    except DeskError as exc:
        raise _desk_error(exc) from exc
    return result


def _chat_text(request: Request, raw: bytes) -> str:
    text = ChatText.model_validate_json(raw or b"{}").text
    max_chars = request.app.state.settings.chat_message_max_chars
    if len(text) > max_chars:
        raise HTTPException(422, f"text: at most {max_chars} characters, got {len(text)}")
    return text


def _check_target(handoff: HandoffService, target: Target) -> None:
    cfg = handoff.live.service.routing.config
    if target.agent and target.agent not in cfg.agents:
        raise DeskError(400, f"no agent {target.agent!r}")
    if target.group and target.group not in cfg.groups:
        raise DeskError(400, f"no group {target.group!r}")
    if target.kind in ("voicemail", "callback", "split"):
        raise DeskError(400, "transfer to an agent, a group or a number")


# -- wrap-up ----------------------------------------------------------------------------------
async def _typed(request: Request, call_id: str) -> tuple[list[Any], str, str]:
    """The call's record as typed events (live or stored), its hotline and locale."""
    session = request.app.state.calls.session(call_id)
    if session is not None:
        return list(session.events.typed), session.info.hotline_number, session.locale
    detail = await asyncio.to_thread(request.app.state.repo.get_call, call_id)
    if detail is None:
        raise HTTPException(404, f"no call {call_id}")
    typed = []
    for e in detail.events:
        with contextlib.suppress(ValidationError):
            typed.append((e.seq, parse_event({**e.payload, "type": e.type})))
    return typed, detail.cdr.hotline_number, detail.cdr.locale


def _answered_by(typed: list[Any], agent_id: str) -> bool:
    return any(getattr(e, "type", "") == "agent_connected" and e.agent_id == agent_id
               for _, e in typed)


@router.get("/calls/{call_id}/draft")
async def wrap_up_draft(call_id: str, agent: Agent, request: Request) -> Draft:
    typed, number, locale = await _typed(request, call_id)
    if not _answered_by(typed, agent.agent_id):
        raise HTTPException(403, f"{agent.agent_id} did not take call {call_id}")
    handoff = handoff_service(request)
    hotline = handoff.live.service.routing.config.hotline(number)
    nlu = request.app.state.nlu
    caller_text = " ".join(e.text for _, e in typed if getattr(e, "type", "") == "transcript"
                           and e.speaker == "caller" and e.is_final)
    intent, answers = None, False
    if nlu is not None and caller_text:
        with contextlib.suppress(Exception):
            understood = await nlu.understand_async(caller_text, locale)
            intent = understood.intent.intent
            answers = bool(intent and nlu.catalog.render_answer(intent, locale, {}))
    return draft(typed, agent.agent_id, dispositions=dispositions_of(hotline),
                 caller_intent=intent, bot_answers=answers)


class WrapUpIn(BaseModel):
    disposition: str = Field(min_length=1, max_length=64)
    notes: str = Field(default="", max_length=4000)
    bot_should_handle: bool = False
    intent: str | None = Field(default=None, max_length=64)
    draft: dict[str, Any] = Field(default_factory=dict)


@router.post("/calls/{call_id}/wrapup")
async def wrap_up(call_id: str, body: WrapUpIn, agent: Agent, request: Request
                  ) -> dict[str, Any]:
    typed, number, _ = await _typed(request, call_id)
    if not _answered_by(typed, agent.agent_id):
        raise HTTPException(403, f"{agent.agent_id} did not take call {call_id}")
    handoff = handoff_service(request)
    allowed = dispositions_of(handoff.live.service.routing.config.hotline(number))
    if body.disposition not in allowed:
        raise HTTPException(422, f"disposition {body.disposition!r} is not one of "
                            f"{', '.join(allowed)}")
    proposed = body.draft.get("disposition"), body.draft.get("intent")
    event = WrapUp(agent_id=agent.agent_id, disposition=body.disposition, notes=body.notes,
                   bot_should_handle=body.bot_should_handle, intent=body.intent,
                   draft=body.draft, corrected=bool(body.draft) and proposed != (
                       body.disposition, body.intent))
    session = request.app.state.calls.session(call_id)
    if session is not None and session.events.accepting:
        session.events.emit(event)
    else:  # the record is closed (or closing: let it finish first), the CDR updated late
        task = request.app.state.calls.task(call_id)
        if task is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(RECORD_CLOSE_WAIT_S):
                    await asyncio.shield(task)
        handoff.late.emitter(call_id)(event)
    await handoff.live.refresh()  # the wrap-up may have been started by another node
    with contextlib.suppress(DeskError):
        if handoff.live.presence(agent.agent_id).system == "wrap_up":
            await handoff.live.end_wrap_up(agent.agent_id)
    return {"status": "saved", **event_payload(event)}


@router.get("/today")
async def today(agent: Agent, request: Request) -> list[Any]:
    return await handoff_service(request).today(agent.agent_id)


# -- live ---------------------------------------------------------------------------------------
@router.websocket("/ws")
async def desk_ws(websocket: WebSocket, who: CurrentPrincipal) -> None:
    """The desk's live feed: offers, presence, the watched calls' events."""
    await websocket.accept()
    try:
        agent_id = agent_of(websocket, who).agent_id
    except HTTPException as exc:  # said after the handshake, so the desk can show why
        await websocket.close(code=1008, reason=str(exc.detail)[:120])
        return
    handoff = handoff_service(websocket)
    handoff.live.desk_back(agent_id)
    async with handoff.desk.connect(agent_id) as messages, \
            websocket.app.state.bus.subscribe(None) as events:
        await websocket.send_json({"type": "hello", **_profile(handoff, agent_id),
                                   "offers": _ringing(handoff, agent_id)})
        tasks = [asyncio.create_task(_send_desk(websocket, messages)),
                 asyncio.create_task(_send_events(websocket, events, handoff, agent_id)),
                 asyncio.create_task(_receive(websocket))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _ringing(handoff: HandoffService, agent_id: str) -> list[dict[str, Any]]:
    """Offers ringing this agent's desk now (a reloaded page shows them again)."""
    return [{"type": "offer", "offer_id": r.offer.id, "call_id": r.offer.call_id,
             "group": r.offer.group, "packet": r.link.packet.model_dump(mode="json"),
             "ring_timeout_s": max(0.0, (r.offer.expires_at - handoff.live.now())
                                   .total_seconds())}
            for r in handoff.live.ringing.values()
            if r.offer.agent_id == agent_id and "web" in r.devices]


async def _send_desk(websocket: WebSocket, messages: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        await websocket.send_json(await messages.get())


async def _send_events(websocket: WebSocket, events: asyncio.Queue[dict[str, Any]],
                       handoff: HandoffService, agent_id: str) -> None:
    while True:
        event = await events.get()
        if event.get("type") not in FORWARDED:
            continue
        if event.get("type") == "transcript" and not event.get("is_final"):
            continue
        if event.get("call_id") in handoff.desk.watching(agent_id):
            await websocket.send_json({"type": "call_event", "event": event})


async def _receive(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()  # pings; the desk acts over HTTP
