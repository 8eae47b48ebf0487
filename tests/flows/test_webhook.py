"""run_webhook against a real HTTP server on 127.0.0.1: ok, hang, garbage, 5xx, retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.flows.engine import FlowEngine
from app.flows.loader import load_flow
from app.flows.runtime import CallContext, CallerInput, Webhook
from app.flows.webhook import run_webhook
from app.settings import PROJECT_ROOT


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.hits[self.path.split("?")[0]] = self.server.hits.get(
            self.path.split("?")[0], 0) + 1
        path = self.path
        if path.startswith("/ok"):
            self._send(200, json.dumps({"status": "shipped", "query": path}).encode())
        elif path == "/hang":
            self.server.release.wait(10)
        elif path in ("/garbage", "/demo/orders/1234"):
            self._send(200, b"<html>oops</html>", "text/html")
        elif path == "/list":
            self._send(200, b"[1, 2]")
        elif path == "/500" or path == "/demo/orders/4567":
            self._send(500, b"{}")
        elif path == "/404":
            self._send(404, b'{"detail": "order not found"}')
        elif path == "/flaky":
            if self.server.hits[path] == 1:
                self._send(503, b"busy", "text/plain")
            else:
                self._send(200, b'{"ok": true}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        self._send(200, json.dumps({"echo": body}).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hits: dict[str, int]
    release: threading.Event


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.hits = {}
    srv.release = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
async def client(server: _Server) -> httpx.AsyncClient:
    host, port = server.server_address[:2]
    return httpx.AsyncClient(base_url=f"http://{host!s}:{port}")


async def _run(client: httpx.AsyncClient, url: str, **kw: Any) -> CallerInput:
    async with client:
        return await run_webhook(Webhook(url=url, **kw), client)


async def test_ok_json_with_query(client: httpx.AsyncClient) -> None:
    result = await _run(client, "/ok", body={"order": "4567"})
    assert result.kind == "webhook_result" and result.ok
    assert result.data == {"status": "shipped", "query": "/ok?order=4567"}


async def test_post_sends_json(client: httpx.AsyncClient) -> None:
    result = await _run(client, "/echo", method="POST", body={"phone": "123"})
    assert result.ok and result.data == {"echo": {"phone": "123"}}


async def test_hang_times_out_and_retries(client: httpx.AsyncClient, server: _Server) -> None:
    result = await _run(client, "/hang", timeout_s=0.3, retries=1)
    assert not result.ok and result.error == "timed out after 0.3 s"
    assert server.hits["/hang"] == 2


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/garbage", 200, "response is not JSON"),
        ("/list", 200, "response is JSON list, not an object"),
        ("/500", 500, "server error 500"),
        ("/404", 404, "client error 404"),
    ],
)
async def test_bad_answers_are_failures(client: httpx.AsyncClient, path: str, status: int,
                                        error: str) -> None:
    result = await _run(client, path, retries=0)
    assert not result.ok and result.status == status
    assert result.error.startswith(error)


async def test_5xx_is_retried_4xx_is_not(client: httpx.AsyncClient, server: _Server) -> None:
    result = await _run(client, "/flaky", retries=2)
    assert result.ok and server.hits["/flaky"] == 2


async def test_connection_refused_is_a_failure() -> None:
    async with httpx.AsyncClient() as client:
        result = await run_webhook(Webhook(url="http://127.0.0.1:9/x", retries=0), client)
    assert not result.ok and result.error.startswith("ConnectError")


@pytest.mark.parametrize("order", ["4567", "1234"])  # 500, then garbage
async def test_demo_flow_takes_the_failure_branch(client: httpx.AsyncClient, order: str) -> None:
    flow = load_flow(PROJECT_ROOT / "ivr_flows" / "demo_hotline.yaml")
    engine = FlowEngine({flow.id: flow})
    at = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    step = engine.start(flow.id, CallContext(now=at))
    for key in ("1", "1", f"{order}#", "1"):
        step = engine.step(step.state, CallerInput.dtmf(key))
    hook = step.webhook
    assert hook is not None and hook.url == f"/demo/orders/{order}"
    async with client:
        result = await run_webhook(hook, client)
    step = engine.step(step.state, result)
    assert step.transfer is not None and step.transfer.reason == "order_lookup_failed"
    assert step.transfer.note == f"订单查询失败 order lookup failed: {order}"
