"""The softphone page: ``GET /phone`` and its static files under ``/static/phone/``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.api.web_files import HTML, NO_CACHE, WEB_DIR, listed_file
from app.auth import public

router = APIRouter(tags=["phone"], dependencies=[public(rate="public")])

PHONE_DIR = WEB_DIR / "phone"
STATIC_FILES = {
    "phone.js": "text/javascript; charset=utf-8",
    "phone.css": "text/css; charset=utf-8",
}

@router.get("/phone", include_in_schema=False)
async def phone_page() -> FileResponse:
    """The browser softphone: pick a hotline and language, call, keypad, live conversation."""
    return FileResponse(PHONE_DIR / "index.html", media_type=HTML,
                        headers=NO_CACHE)


@router.get("/static/phone/{name}", include_in_schema=False)
async def phone_static(name: str) -> FileResponse:
    return listed_file(PHONE_DIR, STATIC_FILES, name)
