"""A real ``hotline serve`` (its own process) on the demo hotline, open around the clock:
for the chat tests and ``bench.chat_load``.

The demo flow is copied without its business calendar, so the bot is open whenever it runs
(the calendar paths are covered by the conversation scripts, which set the time).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.settings import PROJECT_ROOT
from tests.helpers.auth import ADMIN_TOKEN
from tests.helpers.server import free_port, wait_ready

DEMO = "4008001234"


@dataclass
class Server:
    url: str
    tmp: Path
    proc: subprocess.Popen[bytes]
    host_origin: str = ""  # a second origin the server lets embed the chat

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.tmp.glob("server-*.log"))


def open_demo_flow(folder: Path) -> Path:
    """The demo flow without its calendar (always open), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (PROJECT_ROOT / "ivr_flows" / "demo_hotline.yaml").read_text(encoding="utf-8")
    opened = re.sub(r"\ncalendar:\n(?:  .*\n)+", "\n", text)
    assert opened != text, "the demo flow has no calendar block to remove"
    (folder / "demo_hotline.yaml").write_text(opened, encoding="utf-8")
    return folder


def start_server(tmp: Path, *, nlu: bool, **env: str) -> Server:
    port = free_port()
    values = {
        **os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT),
                                                      os.environ.get("PYTHONPATH", "")]),
        "HOTLINE_PORT": str(port), "HOTLINE_DATA_DIR": str(tmp / "data"),
        "HOTLINE_FLOWS_DIR": str(open_demo_flow(tmp / "flows")), "HOTLINE_ASR_MODELS": "{}",
        "HOTLINE_INTENT_TRAIN_ON_START": "false", "HOTLINE_LOG_JSON": "false",
        "HF_HUB_OFFLINE": "1", "HOTLINE_AUTH_BOOTSTRAP_TOKEN": ADMIN_TOKEN, **env,
    }
    if not nlu:  # no intents: menus by buttons and phrases only (starts fast)
        (tmp / "no_intents").mkdir(exist_ok=True)
        values["HOTLINE_INTENTS_DIR"] = str(tmp / "no_intents")
    log = (tmp / f"server-{port}.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=values,
                            stdout=log, stderr=log, cwd=PROJECT_ROOT)
    server = Server(f"http://127.0.0.1:{port}", tmp, proc)
    try:
        asyncio.run(wait_ready(server.url, proc, timeout_s=240))
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=10)
