"""The real app (uvicorn, in process) on the demo hotline with agents at the desk API.

The zh/en recognizer is scripted at the ASR seam (``tests.fakes.ScriptedRecognizer``: no zh/en
Vosk model is installed here); the classifier, flows, TTS, routing, WebRTC legs and the
database are the real ones. The clock runs in real time from a Wednesday 10:00 in Shanghai
(inside the demo's service hours).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from app.main import create_app
from app.nlu.service import NluService
from app.settings import PROJECT_ROOT, Settings
from tests.fakes import ScriptedRecognizer
from tests.helpers.auth import ADMIN, ADMIN_TOKEN
from tests.helpers.desk import Caller, DeskAgent, moving_clock
from tests.helpers.speech import have_espeak
from tests.helpers.tools import require_tool

DEMO = "4008001234"
SHANGHAI_CALLER = "+862165432100"  # no region rule: the default group (zh_service)
WEDNESDAY_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def demo_nlu() -> NluService:
    nlu = NluService(Settings(intent_train_on_start=False))
    problem = nlu.load()
    assert problem is None, f"the shipped demo intent model does not load: {problem}"
    return nlu


@dataclass
class Desk:
    url: str
    app: Any
    asr: ScriptedRecognizer
    opened: list[Any] = field(default_factory=list)

    def agent(self, agent_id: str) -> DeskAgent:
        agent = DeskAgent(self.url, agent_id)
        self.opened.append(agent)
        return agent

    def caller(self) -> Caller:
        caller = Caller(self.url)
        self.opened.append(caller)
        return caller

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def cdr(self, call_id: str, ready: Callable[[dict[str, Any]], bool],
                  timeout_s: float = 30) -> dict[str, Any]:
        """The call's CDR (as the administrator) once ``ready(cdr)`` holds."""
        async with httpx.AsyncClient(base_url=self.url, timeout=30, headers=ADMIN) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while True:
                response = await client.get(f"/v1/calls/{call_id}")
                cdr: dict[str, Any] = response.json().get("cdr") or {}
                if response.status_code == 200 and ready(cdr):
                    return cdr
                if loop.time() > deadline:
                    raise AssertionError(f"CDR of {call_id} not ready: {response.text[:500]}")
                await asyncio.sleep(0.1)


def desk_settings(tmp_path: Path, routing: Path | None = None, **overrides: Any) -> Settings:
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    shutil.copy(PROJECT_ROOT / "ivr_flows" / "demo_hotline.yaml", flows)
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data", flows_dir=flows, asr_models={}, log_json=False,
        intent_train_on_start=False, routing_file=routing or PROJECT_ROOT / "routing" /
        "demo_hotline.yaml", tts_voices={"en": "en-us", "zh": "cmn-latn-pinyin"},
        queue_position_every_s=5.0, auth_bootstrap_token=ADMIN_TOKEN,
    )
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def serve(settings: Settings, services_options: dict[str, Any]
                ) -> AsyncIterator[tuple[str, Any]]:
    """The app on a free 127.0.0.1 port with uvicorn, its services given ``services_options``
    (the scripted recognizer, the loaded classifier, the clock): (url, app)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    app = create_app(settings.model_copy(update={"host": "127.0.0.1", "port": port}),
                     base_url=url, services_options=services_options)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on",
                                           timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="desk-test-server")
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while not server.started:  # uvicorn has no event for it
            assert not task.done(), "the server failed to start (see the log)"
            assert asyncio.get_running_loop().time() < deadline, "the server did not start"
            await asyncio.sleep(0.05)
        yield url, app
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest_asyncio.fixture
async def make_desk(tmp_path: Path, demo_nlu: NluService) -> AsyncIterator[Callable[..., Any]]:
    """``await make_desk(routing=None, **settings)``: the app served; closed after the test."""
    require_tool("espeak-ng")
    if not have_espeak():
        pytest.skip("espeak-ng")
    stack: list[Any] = []

    async def make(routing: Path | None = None, **overrides: Any) -> Desk:
        asr = ScriptedRecognizer()
        server = serve(desk_settings(tmp_path, routing, **overrides), {
            "asr": asr, "nlu": demo_nlu, "clock": moving_clock(WEDNESDAY_10)})
        url, app = await server.__aenter__()
        desk = Desk(url, app, asr)
        stack.append((server, desk))
        return desk

    try:
        yield make
    finally:
        for server, desk in reversed(stack):
            for item in desk.opened:
                await item.close()
            await server.__aexit__(None, None, None)
