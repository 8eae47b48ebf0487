"""The agent desk page: ``GET /agent`` and its static files under ``/static/agent/``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from app.auth import public

router = APIRouter(tags=["desk"], dependencies=[public(rate="public")])

AGENT_DIR = Path(__file__).resolve().parent.parent / "web" / "agent"
STATIC_FILES = {
    "desk.js": "text/javascript; charset=utf-8",
    "desk.css": "text/css; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
}
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/agent", include_in_schema=False)
async def agent_page() -> FileResponse:
    """The agent desk: sign in, state, incoming calls with the packet, audio, wrap-up."""
    return FileResponse(AGENT_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers=NO_CACHE)


@router.get("/static/agent/{name}", include_in_schema=False)
async def agent_static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, f"no such file: {name}")
    return FileResponse(AGENT_DIR / name, media_type=media_type, headers=NO_CACHE)
