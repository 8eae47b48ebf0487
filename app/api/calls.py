"""Call records and live call events: /v1/calls, /v1/hotlines, intents reload.

Who sees what: CDRs need ``calls:read``; a call's transcript, events and flow state need
``transcripts:read`` (without it they are left out), its recording ``recordings:read``; each
transcript or recording access is written to the audit log. Personal data is masked for
roles outside settings ``pii_clear_roles`` (``app.pii``); a caller following their own call
with the pass from the WebRTC answer sees its conversation only.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    HTTPException,
    Path,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel

from app.api.errors import close_reason
from app.auth import CurrentPrincipal, Perm, Principal, client_ip, public, require
from app.pii import PII_KINDS, mask_json
from app.storage.schemas import CallDetail, CallPage

router = APIRouter(prefix="/v1", tags=["calls"])
# what a caller following their own call sees: the conversation, not the machinery
CALLER_EVENT_TYPES = frozenset({
    "call_started", "call_ended", "prompt_played", "transcript", "dtmf", "intent",
    "node_entered", "listen", "no_input", "barge_in", "transfer", "queue_position",
    "queue_timeout", "hangup", "locale_changed", "speech_unavailable", "turn_latency",
    "recording_started", "recording_paused", "recording_resumed",
    "queue_joined", "agent_connected", "agent_disconnected", "hold",  # the human side
})

MAX_OFFSET = 2**31 - 1  # far beyond any page; keeps SQL integers in range
CallId = Annotated[str, Path(min_length=1, max_length=64, description="a call's id")]
Filter = Annotated[str | None, Query(max_length=64)]
Moment = Annotated[AwareDatetime | None, Query(
    description="ISO 8601 with a time zone, e.g. 2026-11-26T08:00:00+08:00")]


class RecordingRef(BaseModel):
    """A call's recording as the API shows it: a URL to fetch it, never a server path."""

    id: int
    url: str
    duration_s: float
    caller_notified: bool
    created_at: datetime


class CallView(CallDetail):
    recordings: list[RecordingRef]  # type: ignore[assignment]


def _view(detail: CallDetail) -> CallView:
    call_id = detail.cdr.id
    refs = [RecordingRef(id=r.id, url=f"/v1/calls/{call_id}/recording?id={r.id}",
                         duration_s=r.duration_s, caller_notified=r.caller_notified,
                         created_at=r.created_at) for r in detail.recordings]
    return CallView.model_validate({**dict(detail), "recordings": refs})


def masked_for(who: Principal, settings: Any, value: Any) -> Any:
    """``value`` (JSON-like) with personal data masked unless ``who`` may see it in clear."""
    return value if who.sees_clear_pii(settings) else mask_json(value, PII_KINDS)


@router.get("/hotlines", dependencies=[public(rate="public")])
async def hotlines(request: Request) -> list[dict[str, Any]]:
    """The numbers this server answers, with their flow and languages."""
    return [
        {"number": h.number, "flow_id": h.flow_id, "locales": list(h.locales),
         "default_locale": h.default_locale}
        for h in request.app.state.calls.hotlines.values()
    ]


@router.get("/calls", response_model=CallPage, dependencies=[require(Perm.CALLS_READ)])
async def list_calls(
    request: Request,
    who: CurrentPrincipal,
    started_from: Moment = None,
    started_to: Moment = None,
    number: Annotated[str | None, Query(max_length=64, description="hotline number")] = None,
    outcome: Filter = None,
    intent: Filter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Any:
    repo = request.app.state.repo
    page = await asyncio.to_thread(
        lambda: repo.list_calls(
            started_from=started_from, started_to=started_to, hotline_number=number,
            outcome=outcome, intent=intent, limit=limit, offset=offset,
        )
    )
    return masked_for(who, request.app.state.settings, page.model_dump(mode="json"))


@router.get("/calls/{call_id}", response_model=CallView,
            dependencies=[require(Perm.CALLS_READ)])
async def get_call(request: Request, call_id: CallId, who: CurrentPrincipal) -> Any:
    """The CDR and its recordings (as URLs); with ``transcripts:read`` also the transcript,
    events and flow state (each such read is audited)."""
    detail: CallDetail | None = await asyncio.to_thread(request.app.state.repo.get_call,
                                                         call_id)
    if detail is None:
        raise HTTPException(404, f"no call {call_id}")
    body = _view(detail).model_dump(mode="json")
    if who.can(Perm.TRANSCRIPTS_READ):
        await request.app.state.auth.audit(who, "transcript.read", f"call:{call_id}",
                                           ip=client_ip(request))
    else:
        body.update(turns=[], events=[])
        body["cdr"]["flow_state"] = None
    return masked_for(who, request.app.state.settings, body)


@router.get("/calls/{call_id}/recording", response_class=FileResponse,
            dependencies=[require(Perm.RECORDINGS_READ)])
async def get_recording(
    request: Request, call_id: CallId, who: CurrentPrincipal,
    id: Annotated[int | None, Query(ge=1, le=MAX_OFFSET, description="default: the last")] = None,
) -> FileResponse:
    """The call's recording (stereo WAV): the one named by ``id``, or its last one (each
    download is audited)."""
    detail = await asyncio.to_thread(request.app.state.repo.get_call, call_id)
    if detail is None:
        raise HTTPException(404, f"no call {call_id}")
    if not detail.recordings:
        raise HTTPException(404, f"call {call_id} was not recorded")
    chosen = [r for r in detail.recordings if id is None or r.id == id]
    if not chosen:
        raise HTTPException(404, f"call {call_id} has no recording {id}")
    path = request.app.state.settings.recordings_dir / FilePath(chosen[-1].path).name
    if not await asyncio.to_thread(path.is_file):
        raise HTTPException(410, f"recording of call {call_id} is no longer on disk")
    await request.app.state.auth.audit(who, "recording.read", f"call:{call_id}",
                                       ip=client_ip(request))
    return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")


def _viewer(websocket: WebSocket, who: Principal) -> Any:
    """How each event is shown to ``who``: filtered (a caller) and masked."""
    settings = websocket.app.state.settings

    def show(event: dict[str, Any]) -> dict[str, Any] | None:
        if who.via == "caller" and event.get("type") not in CALLER_EVENT_TYPES:
            return None
        shown: dict[str, Any] = masked_for(who, settings, event)
        return shown

    return show


async def _serve_events(websocket: WebSocket, call_id: str | None, who: Principal) -> None:
    """Stream events until done or the client leaves (it never writes, so only a reader
    notices that: otherwise a gone client's subscription would linger until the next event
    and stall the server's shutdown)."""
    if call_id is not None and who.via != "caller":
        await websocket.app.state.auth.audit(who, "transcript.read", f"call:{call_id}",
                                             ip=client_ip(websocket))
    # subscribed before the handshake completes: a client that starts a call once its socket
    # is open sees that call's first event
    async with websocket.app.state.bus.subscribe(call_id) as queue:
        await websocket.accept()
        streaming = asyncio.create_task(_stream(websocket, call_id, who, queue),
                                        name="ws-events")
        leaving = asyncio.create_task(_client_gone(websocket), name="ws-events-reader")
        try:
            done, _ = await asyncio.wait({streaming, leaving},
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, leaving):
                task.cancel()
            await asyncio.gather(streaming, leaving, return_exceptions=True)
    if streaming in done and not streaming.cancelled():
        exc = streaming.exception()
        if exc is not None and not isinstance(exc, WebSocketDisconnect):
            raise exc


async def _client_gone(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # what a client sends is ignored


async def _stream(websocket: WebSocket, call_id: str | None, who: Principal,
                  queue: asyncio.Queue[dict[str, Any]]) -> None:
    state = websocket.app.state
    show = _viewer(websocket, who)
    last_seq = 0
    if call_id is not None:
        session = state.calls.session(call_id)
        if session is not None:
            for event in list(session.events.history):
                await _send(websocket, show(event))
                last_seq = event["seq"]
        else:
            detail = await asyncio.to_thread(state.repo.get_call, call_id)
            if detail is None:
                await websocket.close(code=4404, reason=close_reason(f"no call {call_id}"))
                return
            for event in detail.events:
                await _send(websocket, show(
                    {**event.payload, "type": event.type, "call_id": call_id,
                     "seq": event.seq, "at": event.at.isoformat()}
                ))
                last_seq = event.seq
            if detail.cdr.ended_at is not None or not state.bus.shared:
                await websocket.close()
                return
            # live on another node: its events arrive through the shared bus (Redis)
    while True:
        event = await queue.get()
        if call_id is not None and event.get("seq", 0) <= last_seq:
            continue
        await _send(websocket, show(event))
        if call_id is not None and event["type"] == "call_ended":
            await websocket.close()
            return


async def _send(websocket: WebSocket, event: dict[str, Any] | None) -> None:
    if event is not None:
        await websocket.send_json(event)


@router.websocket("/calls/events", dependencies=[require(Perm.EVENTS_LIVE)])
async def all_call_events(websocket: WebSocket, who: CurrentPrincipal) -> None:
    """Live events of every call (monitoring, integrations)."""
    await state_audit(websocket, who, "events.live", "calls:*")
    await _serve_events(websocket, None, who)


@router.websocket("/calls/{call_id}/events",
                  dependencies=[require(Perm.TRANSCRIPTS_READ, caller_pass=True)])
async def call_events(websocket: WebSocket, call_id: CallId, who: CurrentPrincipal) -> None:
    """One call's events: what happened so far, then live until it ends. A caller follows
    their own call with ``?caller_token=`` (the pass in the WebRTC answer)."""
    await _serve_events(websocket, call_id, who)


async def state_audit(websocket: WebSocket, who: Principal, action: str, target: str) -> None:
    await websocket.app.state.auth.audit(who, action, target, ip=client_ip(websocket))


@router.post("/intents/reload", dependencies=[require(Perm.INTENTS_MANAGE)])
async def reload_intents(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    """Swap in the newest trained intent model; calls in progress are not disturbed.
    Audited as a configuration change (model version before and after)."""
    nlu = request.app.state.nlu
    if nlu is None:
        raise HTTPException(503, "intent service is not loaded")
    before = getattr(nlu, "version", None)
    await asyncio.to_thread(nlu.reload)
    after = getattr(nlu, "version", None)
    await request.app.state.auth.audit(who, "intents.reload", "intent_model",
                                       before={"version": before}, after={"version": after},
                                       ip=client_ip(request))
    return {"status": "reloaded", "version": after}
