"""`hotline models pull` against a real HTTP server on 127.0.0.1 serving zips built here."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.asr.cli import models_app
from app.asr.registry import ModelRegistry

NAME = "vosk-model-tiny-xx-0.1"
FST_MAGIC = (2125659606).to_bytes(4, "little")


def model_zip(rate_hz: int = 16_000, *, valid: bool = True) -> bytes:
    """A zip laid out like an official Vosk model archive (top folder named after the model)."""
    files = {
        "am/final.mdl": b"\x00B" + b"\x01" * 4000 if valid else b"oops",
        "conf/model.conf": b"--beam=10.0\n",
        "conf/mfcc.conf": f"--use-energy=false\n--sample-frequency={rate_hz}\n".encode(),
        "graph/HCLG.fst": FST_MAGIC + b"\x02" * 4000,
        "graph/words.txt": b"<eps> 0\nhello 1\n",
        "README": b"tiny test model\n",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"{NAME}/{rel}", data)
    return buf.getvalue()


@dataclass
class Server:
    url: str
    routes: dict[str, tuple[bytes, int | None]] = field(default_factory=dict)
    # path -> (body, bytes to send before closing early; None = all)


@pytest.fixture
def server() -> Iterator[Server]:
    srv: Server

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            route = srv.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            body, cut = route
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
            if cut is not None:
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def write_manifest(models: Path, url: str, sha256: str, size_bytes: int = 0) -> None:
    models.mkdir(parents=True, exist_ok=True)
    (models / "manifest.toml").write_text(
        f'[models."{NAME}"]\nurl = "{url}"\nsha256 = "{sha256}"\nsize_bytes = {size_bytes}\n'
        'size_label = "4K"\nsample_rate_hz = 16000\nlocale = "xx"\n'
    )


def run(models: Path, *args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["models", *args], env={"HOTLINE_MODELS_DIR": str(models)})
    return result.exit_code, " ".join(result.output.split())


def leftovers(models: Path) -> list[str]:
    vosk = models / "vosk"
    return sorted(p.name for p in vosk.iterdir()) if vosk.exists() else []


def test_pull_installs_a_verified_model(server: Server, tmp_path: Path) -> None:
    body = model_zip()
    server.routes["/tiny.zip"] = (body, None)
    models = tmp_path / "models"
    write_manifest(models, f"{server.url}/tiny.zip", hashlib.sha256(body).hexdigest(), len(body))
    code, out = run(models, "pull", NAME)
    assert code == 0, out
    assert leftovers(models) == [NAME]
    info = ModelRegistry(models).info(NAME)
    assert info.problem is None and info.sample_rate_hz == 16_000
    code, out = run(models, "list")
    assert code == 0 and NAME in out and "installed" in out


def test_wrong_checksum_installs_nothing(server: Server, tmp_path: Path) -> None:
    server.routes["/tiny.zip"] = (model_zip(), None)
    models = tmp_path / "models"
    write_manifest(models, f"{server.url}/tiny.zip", "0" * 64)
    code, out = run(models, "pull", NAME)
    assert code == 1
    assert "checksum mismatch" in out
    assert leftovers(models) == []


def test_truncated_download_installs_nothing(server: Server, tmp_path: Path) -> None:
    body = model_zip()
    server.routes["/tiny.zip"] = (body, len(body) // 3)
    models = tmp_path / "models"
    write_manifest(models, f"{server.url}/tiny.zip", hashlib.sha256(body).hexdigest())
    code, out = run(models, "pull", NAME)
    assert code == 1
    assert "download" in out and "failed" in out or "truncated" in out
    assert leftovers(models) == []


def test_archive_that_is_not_a_model_installs_nothing(server: Server, tmp_path: Path) -> None:
    body = model_zip(valid=False)
    server.routes["/tiny.zip"] = (body, None)
    models = tmp_path / "models"
    write_manifest(models, f"{server.url}/tiny.zip", hashlib.sha256(body).hexdigest())
    code, out = run(models, "pull", NAME)
    assert code == 1
    assert "not a usable Vosk model" in out and "am/final.mdl is corrupt" in out
    assert leftovers(models) == []


def test_http_error_is_reported(server: Server, tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_manifest(models, f"{server.url}/missing.zip", "0" * 64)
    code, out = run(models, "pull", NAME)
    assert code == 1 and "HTTP 404" in out
    assert leftovers(models) == []


def test_unverified_model_needs_no_verify(server: Server, tmp_path: Path) -> None:
    server.routes["/tiny.zip"] = (model_zip(), None)
    models = tmp_path / "models"
    write_manifest(models, f"{server.url}/tiny.zip", "")
    code, out = run(models, "pull", NAME)
    assert code == 1 and "--no-verify" in out
    assert leftovers(models) == []
    code, out = run(models, "pull", NAME, "--no-verify")
    assert code == 0, out
    assert leftovers(models) == [NAME]


def test_url_override_and_unknown_name(server: Server, tmp_path: Path) -> None:
    body = model_zip()
    server.routes["/mirror.zip"] = (body, None)
    models = tmp_path / "models"
    write_manifest(models, "https://example.invalid/never.zip", hashlib.sha256(body).hexdigest())
    code, out = run(models, "pull", NAME, "--url", f"{server.url}/mirror.zip")
    assert code == 0, out
    code, out = run(models, "pull", "vosk-model-nope")
    assert code == 1 and "unknown model" in out


def test_list_shows_pullable_models_from_the_project_manifest() -> None:
    code, out = run(Path(__file__).resolve().parents[2] / "models", "list")
    assert code == 0
    for name in ("vosk-model-small-en-us-0.15", "vosk-model-small-cn-0.22",
                 "vosk-model-en-us-0.22", "vosk-model-cn-0.22"):
        assert name[:12] in out


def ensure(models: Path) -> tuple[int, str]:
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    app.command("noop")(lambda: None)
    env = {"HOTLINE_MODELS_DIR": str(models), "HOTLINE_ASR_MODELS": f'{{"xx": "{NAME}"}}'}
    result = CliRunner().invoke(app, ["models", "ensure"], env=env)
    return result.exit_code, result.output


def test_ensure_pulls_a_missing_configured_model_once(server: Server, tmp_path: Path) -> None:
    body = model_zip()
    server.routes["/tiny.zip"] = (body, None)
    models = tmp_path / "models"
    write_manifest(models, f"{server.url}/tiny.zip", hashlib.sha256(body).hexdigest(), len(body))
    code, out = ensure(models)
    assert code == 0 and f"installed {NAME} (xx)" in out, out
    assert leftovers(models) == [NAME]
    server.routes.clear()  # a second run finds it installed and downloads nothing
    code, out = ensure(models)
    assert code == 0 and out == ""


def test_ensure_without_network_says_keypad_only_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    models = tmp_path / "models"
    write_manifest(models, f"http://127.0.0.1:{closed}/tiny.zip", "0" * 64)
    code, out = ensure(models)
    assert code == 0  # `make run` goes on to serve
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(f"note: calls in xx are keypad-only: {NAME} could not be pulled")
    assert f"retry with: hotline models pull {NAME}" in lines[0]
    assert leftovers(models) == []
