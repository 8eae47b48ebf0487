"""Serving the browser pages' files (softphone, agent desk, chat widget): only the files a
page lists, never a path the client chose, and never cached stale after an upgrade."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
HTML = "text/html; charset=utf-8"
NO_CACHE = {"Cache-Control": "no-cache"}


def listed_file(folder: Path, files: Mapping[str, str], name: str,
                headers: Mapping[str, str] = NO_CACHE) -> FileResponse:
    """``folder/name`` when ``name`` is one of ``files`` (name -> media type), else 404."""
    media_type = files.get(name)
    if media_type is None:
        raise HTTPException(404, f"no such file: {name}")
    return FileResponse(folder / name, media_type=media_type, headers=dict(headers))
