"""Call records and live call events: /v1/calls, /v1/hotlines, intents reload."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

router = APIRouter(prefix="/v1", tags=["calls"])


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
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    number: Annotated[str | None, Query(description="hotline number")] = None,
    outcome: str | None = None,
    intent: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    repo = request.app.state.repo
    return await asyncio.to_thread(
        lambda: repo.list_calls(
            started_from=started_from, started_to=started_to, hotline_number=number,
            outcome=outcome, intent=intent, limit=limit, offset=offset,
        )
    )


@router.get("/calls/{call_id}")
async def get_call(request: Request, call_id: str) -> Any:
    detail = await asyncio.to_thread(request.app.state.repo.get_call, call_id)
    if detail is None:
        raise HTTPException(404, f"no call {call_id}")
    return detail


@router.get("/calls/{call_id}/recording", response_class=FileResponse)
async def get_recording(request: Request, call_id: str) -> FileResponse:
    detail = await asyncio.to_thread(request.app.state.repo.get_call, call_id)
    if detail is None:
        raise HTTPException(404, f"no call {call_id}")
    if not detail.recordings:
        raise HTTPException(404, f"call {call_id} was not recorded")
    path = request.app.state.settings.recordings_dir / Path(detail.recordings[-1].path).name
    if not await asyncio.to_thread(path.is_file):
        raise HTTPException(410, f"recording of call {call_id} is no longer on disk")
    return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")


async def _stream(websocket: WebSocket, call_id: str | None) -> None:
    state = websocket.app.state
    await websocket.accept()
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
                    await websocket.close(code=4404, reason=f"no call {call_id}")
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
    try:
        await _stream(websocket, None)
    except WebSocketDisconnect:
        return


@router.websocket("/calls/{call_id}/events")
async def call_events(websocket: WebSocket, call_id: str) -> None:
    """One call's events: what happened so far, then live until it ends."""
    try:
        await _stream(websocket, call_id)
    except WebSocketDisconnect:
        return


@router.post("/intents/reload")
async def reload_intents(request: Request) -> dict[str, Any]:
    """Swap in the newest trained intent model; calls in progress are not disturbed."""
    nlu = request.app.state.nlu
    if nlu is None:
        raise HTTPException(503, "intent service is not loaded")
    await asyncio.to_thread(nlu.reload)
    return {"status": "reloaded", "version": getattr(nlu, "version", None)}
