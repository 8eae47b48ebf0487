"""A sample of PROTOS c07-sip against a real ``hotline serve`` (the full run: bench.protos_sip):
every case sent, the server answering OPTIONS after each batch, a valid call completing after."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from app.media.audio import Pcm
from app.sip.simcaller import place_sip_call
from tests.helpers.protos import run_protos
from tests.sip.conftest import KO_NUMBER, start_server, stop_server


def test_a_protos_sample_leaves_the_server_up_and_calls_working(
        datasets_dir: Path, tmp_path: Path) -> None:
    folder = datasets_dir / "protos-sip-c07" / "cases"
    if not folder.is_dir():
        pytest.skip(f"PROTOS cases not present at {folder}")
    cases = sorted(folder.iterdir())
    sample = cases[::45]  # ~100 cases spread over every group of the suite
    server = start_server(tmp_path, HOTLINE_SIP_RATE_LIMIT_PER_S="100000",
                          HOTLINE_SIP_MAX_CALLS="500", HOTLINE_RTP_TIMEOUT_S="5",
                          HOTLINE_INTENT_MODEL_DIR=str(tmp_path / "no-intents"))
    try:
        run = asyncio.run(run_protos(sample, server.sip_port, number=KO_NUMBER, batch=20))
        assert run.cases == len(sample) and run.batches_ok == run.batches, run
        assert run.responses.get("4xx", 0) > 0  # malformed cases were answered
        result = asyncio.run(place_sip_call(
            "127.0.0.1", server.sip_port, Pcm(bytes(8000 * 2 * 6), 8000), number=KO_NUMBER,
            dtmf=[("1", 4.0)], grace_s=25, timeout_s=90))
        assert result.dial.answered and result.ended_by == "server"
        assert server.proc.poll() is None
        assert server.metric("hotline_sip_malformed_total", 'kind="sip"') > 0
    finally:
        alive = server.proc.poll() is None
        stop_server(server.proc)
    assert alive and server.proc.returncode in (0, -signal.SIGINT)
