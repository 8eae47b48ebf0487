"""The first minutes: what `hotline serve` prints, the landing page, offline API docs, logs
for a terminal or a pipe, and a fresh models volume seeded from the shipped models."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.asr.registry import ModelRegistry
from app.log import configure_logging, get_logger, want_json
from app.main import create_app
from app.seed import seed_intent_model
from app.serve import ServeError, banner, check_flows, check_port_free
from app.settings import PROJECT_ROOT, Settings


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))  # no lifespan: static pages only


def test_landing_page_links_what_the_server_offers(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in ("/phone", "/chat", "/agent", "/docs", "/readyz", "/metrics"):
        assert f'href="{path}"' in page.text
    assert 'href="/admin"' not in page.text  # only pages that exist


def test_api_docs_need_no_internet(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn." not in docs.text and "https://" not in docs.text
    script = client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 500_000
    assert client.get("/static-offline-docs/swagger-ui.css").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Hotline"


def test_banner_says_where_it_listens_and_what_to_open(settings: Settings) -> None:
    app = create_app(settings)
    out = io.StringIO()
    banner(settings.model_copy(update={"host": "0.0.0.0", "port": 9123}), app.routes, out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Hotline listening on http://127.0.0.1:9123")
    shown = "\n".join(lines)
    for url in ("http://127.0.0.1:9123/phone", "http://127.0.0.1:9123/docs",
                "http://127.0.0.1:9123/readyz"):
        assert url in shown
    assert "reachable from other machines" in shown


def test_port_in_use_is_found_before_anything_loads() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServeError, match=f"port {port} on 127.0.0.1 is already in use"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again


def test_missing_flows_folder_is_named(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="flows folder not found: .*HOTLINE_FLOWS_DIR"):
        check_flows(settings.model_copy(update={"flows_dir": tmp_path / "nope"}))


def test_logs_are_json_in_a_pipe_and_human_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert want_json(None) is True  # pytest's stderr is not a terminal
    assert want_json(False) is False and want_json(True) is True
    configure_logging("INFO", None)
    get_logger(call_id="c1").info("hello", n=1)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line)["call_id"] == "c1"
    configure_logging("INFO", False)
    get_logger(call_id="c2").info("hello")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "hello" in line and "call_id=c2" in line and "\x1b[" not in line
    configure_logging("WARNING", False)


def test_a_fresh_models_volume_gets_the_shipped_manifest_and_intent_model(
    tmp_path: Path,
) -> None:
    volume = tmp_path / "models"  # what the image mounts: empty
    settings = Settings(data_dir=tmp_path / "data", models_dir=volume,
                        models_seed_dir=PROJECT_ROOT / "models")
    assert settings.manifest_path == PROJECT_ROOT / "models" / "manifest.toml"
    assert "vosk-model-small-cn-0.22" in ModelRegistry.for_settings(settings).manifest
    copied = seed_intent_model(settings)
    assert copied == volume / "intents"
    version = (volume / "intents" / "current").read_text().strip()
    assert (volume / "intents" / version / "manifest.json").is_file()
    assert seed_intent_model(settings) is None  # already there: left alone
    (volume / "manifest.toml").write_text("")  # the volume's own manifest wins once present
    assert Settings(models_dir=volume, models_seed_dir=PROJECT_ROOT / "models"
                    ).manifest_path == volume / "manifest.toml"
