"""``GET /``: a small landing page linking what this server offers (the pages that exist)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.routing import BaseRoute, Match

router = APIRouter(tags=["landing"])

# (path, title, what it is) in the order a newcomer wants them
PAGES: tuple[tuple[str, str, str], ...] = (
    ("/phone", "Softphone", "call a hotline from this browser (microphone, keypad)"),
    ("/chat", "Web chat", "the same bot by text: menus as buttons (and a snippet for your site)"),
    ("/agent", "Agent desk", "take transferred calls with transcript and intent"),
    ("/admin", "Admin console", "hotlines, flows, users and reports"),
    ("/docs", "API docs", "every endpoint, tried from the browser (works offline)"),
    ("/readyz", "Readiness", "what is loaded and what is degraded"),
    ("/metrics", "Metrics", "Prometheus metrics"),
)


def serves(routes: list[BaseRoute], path: str) -> bool:
    """Whether a GET of ``path`` reaches one of ``routes`` (included routers too)."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [],
             "query_string": b""}
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


def available_pages(routes: list[BaseRoute]) -> list[tuple[str, str, str]]:
    """The pages of ``PAGES`` this app serves (the agent and admin pages once they exist)."""
    return [page for page in PAGES if serves(routes, page[0])]


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
async def landing(request: Request) -> HTMLResponse:
    items = "\n".join(
        f'<li><a href="{escape(path)}">{escape(title)}</a> <span>{escape(text)}</span></li>'
        for path, title, text in available_pages(request.app.routes)
    )
    return HTMLResponse(PAGE.format(items=items), headers={"Cache-Control": "no-cache"})


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hotline</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; max-width: 40rem;
       margin: 3rem auto; padding: 0 1rem; color: #222; }}
li {{ margin: .6rem 0; }} a {{ font-weight: 600; }} span {{ color: #555; }}
</style></head>
<body>
<h1>Hotline</h1>
<p>AI voice front-end for customer-service hotlines. This server offers:</p>
<ul>
{items}
</ul>
</body></html>
"""
