"""The agent desk page: ``GET /agent`` and its static files under ``/static/agent/``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.api.web_files import HTML, NO_CACHE, WEB_DIR, listed_file
from app.auth import public

router = APIRouter(tags=["desk"], dependencies=[public(rate="public")])

AGENT_DIR = WEB_DIR / "agent"
STATIC_FILES = {
    "desk.js": "text/javascript; charset=utf-8",
    "desk.css": "text/css; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
}

@router.get("/agent", include_in_schema=False)
async def agent_page() -> FileResponse:
    """The agent desk: sign in, state, incoming calls with the packet, audio, wrap-up."""
    return FileResponse(AGENT_DIR / "index.html", media_type=HTML,
                        headers=NO_CACHE)


@router.get("/static/agent/{name}", include_in_schema=False)
async def agent_static(name: str) -> FileResponse:
    return listed_file(AGENT_DIR, STATIC_FILES, name)
