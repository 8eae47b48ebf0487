"""The softphone page: ``GET /phone`` and its static files under ``/static/phone/``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from app.auth import public

router = APIRouter(tags=["phone"], dependencies=[public(rate="public")])

PHONE_DIR = Path(__file__).resolve().parent.parent / "web" / "phone"
STATIC_FILES = {
    "phone.js": "text/javascript; charset=utf-8",
    "phone.css": "text/css; charset=utf-8",
}
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/phone", include_in_schema=False)
async def phone_page() -> FileResponse:
    """The browser softphone: pick a hotline and language, call, keypad, live conversation."""
    return FileResponse(PHONE_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers=NO_CACHE)


@router.get("/static/phone/{name}", include_in_schema=False)
async def phone_static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, f"no such file: {name}")
    return FileResponse(PHONE_DIR / name, media_type=media_type, headers=NO_CACHE)
