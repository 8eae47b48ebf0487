"""The chat page and its files as served: the Content-Security-Policy (no inline script, no
other origin, framing only by the allowed sites), the embed snippet loadable by other sites."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.api.chat_page import CHAT_DIR
from app.main import create_app
from app.settings import Settings


def test_the_page_forbids_inline_script_and_foreign_framing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, chat_allowed_origins=["https://shop.example"])
    client = TestClient(create_app(settings))  # no lifespan: static pages only
    page = client.get("/chat?hotline=4008001234")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert policy.endswith("frame-ancestors 'self' https://shop.example")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/static/chat/chat.js"></script>' in page.text
    embed = client.get("/static/chat/embed.js")
    assert embed.status_code == 200 and embed.headers["content-type"].startswith(
        "text/javascript")
    assert embed.headers["cross-origin-resource-policy"] == "cross-origin"
    assert client.get("/static/chat/chat.css").status_code == 200
    assert client.get("/static/chat/../main.py").status_code == 404
    assert client.get("/static/chat/index.html").status_code == 404


def test_the_widget_never_parses_text_as_html() -> None:
    for name in ("chat.js", "embed.js"):
        code = (CHAT_DIR / name).read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, f"{name} uses {sink}"
        assert "https://" not in code.replace("https://HOTLINE-SERVER", "")  # no CDN
