"""Call records and live call events: /v1/calls, /v1/hotlines, intents reload."""

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
from app.storage.schemas import CallDetail

router = APIRouter(prefix="/v1", tags=["calls"])

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


@router.get("/hotlines")
async def hotlines(request: Request) -> list[dict[str, Any]]:
    """The numbers this server answers, with their flow and languages."""
    return [
        {"number": h.number, "flow_id": h.flow_id, "locales": list(h.locales),
         "default_locale": h.default_locale}
        for h in request.app.state.calls.hotlines.values()
    ]


@router.get("/calls")
async def list_calls(
    request: Request,
    started_from: Moment = None,
    started_to: Moment = None,
    number: Annotated[str | None, Query(max_length=64, description="hotline number")] = None,
    outcome: Filter = None,
    intent: Filter = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Any:
    repo = request.app.state.repo
    return await asyncio.to_thread(
        lambda: repo.list_calls(
            started_from=started_from, started_to=started_to, hotline_number=number,
            outcome=outcome, intent=intent, limit=limit, offset=offset,
        )
    )


@router.get("/calls/{call_id}", response_model=CallView)
async def get_call(request: Request, call_id: CallId) -> CallView:
    detail = await asyncio.to_thread(request.app.state.repo.get_call, call_id)
    if detail is None:
        raise HTTPException(404, f"no call {call_id}")
    return _view(detail)


@router.get("/calls/{call_id}/recording", response_class=FileResponse)
async def get_recording(
    request: Request, call_id: CallId,
    id: Annotated[int | None, Query(ge=1, le=MAX_OFFSET, description="default: the last")] = None,
) -> FileResponse:
    """The call's recording (WAV): the one named by ``id``, or its last one."""
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
    return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")


async def _serve_events(websocket: WebSocket, call_id: str | None) -> None:
    """Stream events until done or the client leaves (it never writes, so only a reader
    notices that: otherwise a gone client's subscription would linger until the next event
    and stall the server's shutdown)."""
    await websocket.accept()
    streaming = asyncio.create_task(_stream(websocket, call_id), name="ws-events")
    leaving = asyncio.create_task(_client_gone(websocket), name="ws-events-reader")
    try:
        done, _ = await asyncio.wait({streaming, leaving}, return_when=asyncio.FIRST_COMPLETED)
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


async def _stream(websocket: WebSocket, call_id: str | None) -> None:
    state = websocket.app.state
    async with state.bus.subscribe(call_id) as queue:
        last_seq = 0
        if call_id is not None:
            session = state.calls.session(call_id)
            if session is not None:
                for event in list(session.events.history):
                    await websocket.send_json(event)
                    last_seq = event["seq"]
            else:
                detail = await asyncio.to_thread(state.repo.get_call, call_id)
                if detail is None:
                    await websocket.close(code=4404, reason=close_reason(f"no call {call_id}"))
                    return
                for event in detail.events:
                    await websocket.send_json(
                        {**event.payload, "type": event.type, "call_id": call_id,
                         "seq": event.seq, "at": event.at.isoformat()}
                    )
                await websocket.close()
                return
        while True:
            event = await queue.get()
            if call_id is not None and event.get("seq", 0) <= last_seq:
                continue
            await websocket.send_json(event)
            if call_id is not None and event["type"] == "call_ended":
                await websocket.close()
                return


@router.websocket("/calls/events")
async def all_call_events(websocket: WebSocket) -> None:
    """Live events of every call (monitoring, the agent console)."""
    await _serve_events(websocket, None)


@router.websocket("/calls/{call_id}/events")
async def call_events(websocket: WebSocket, call_id: CallId) -> None:
    """One call's events: what happened so far, then live until it ends."""
    await _serve_events(websocket, call_id)


@router.post("/intents/reload")
async def reload_intents(request: Request) -> dict[str, Any]:
    """Swap in the newest trained intent model; calls in progress are not disturbed."""
    nlu = request.app.state.nlu
    if nlu is None:
        raise HTTPException(503, "intent service is not loaded")
    await asyncio.to_thread(nlu.reload)
    return {"status": "reloaded", "version": getattr(nlu, "version", None)}
