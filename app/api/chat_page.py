"""The chat widget: ``GET /chat`` and its static files under ``/static/chat/``.

``/chat?hotline=4008001234&lang=zh`` is the whole widget (vanilla JS, no CDN). A company
embeds it on its own site with ``/static/chat/embed.js`` (a launcher button that opens the
widget in an iframe): ``frame-ancestors`` lets only this server and ``chat_allowed_origins``
frame it. The page's Content-Security-Policy allows no inline script and no other origin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from app.api.web_files import HTML, WEB_DIR, listed_file
from app.settings import Settings

router = APIRouter(tags=["chat"])

CHAT_DIR = WEB_DIR / "chat"
STATIC_FILES = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "embed.js": "text/javascript; charset=utf-8",
}
NO_CACHE = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def page_policy(settings: Settings) -> str:
    allowed = settings.chat_allowed_origins
    ancestors = "*" if "*" in allowed else " ".join(["'self'", *allowed])
    return ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            f"img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            f"frame-ancestors {ancestors}")


@router.get("/chat", include_in_schema=False)
async def chat_page(request: Request) -> FileResponse:
    """The chat widget: talk to a hotline's bot by text (buttons for its menus)."""
    headers = {**NO_CACHE, "Content-Security-Policy": page_policy(request.app.state.settings),
               "Referrer-Policy": "no-referrer"}
    return FileResponse(CHAT_DIR / "index.html", media_type=HTML,
                        headers=headers)


@router.get("/static/chat/{name}", include_in_schema=False)
async def chat_static(name: str) -> FileResponse:
    headers = dict(NO_CACHE)
    if name == "embed.js":  # loaded by other sites' pages
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return listed_file(CHAT_DIR, STATIC_FILES, name, headers)
