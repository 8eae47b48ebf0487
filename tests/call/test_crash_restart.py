"""A server killed with calls in flight: the next start finalizes every one of them."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from app.media.audio import Pcm
from app.sim.caller import place_call
from tests.helpers.auth import ADMIN
from tests.helpers.server import KO_NUMBER, free_port, serve_ko, wait_ready
from tests.helpers.speech import have_espeak
from tests.helpers.tools import needs

NUMBER = KO_NUMBER

pytestmark = needs(have_espeak(), "espeak-ng")


async def test_kill_9_with_calls_in_flight_then_restart_finalizes_them(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve_ko(tmp_path, port)
    try:
        await wait_ready(url, server)
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
        # events are published at once and stored in the background: what a kill -9 keeps
        # is what was stored (acknowledged) by then, so wait until the menu's listen is
        await _until_stored(url, in_flight, "listen")
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        await asyncio.gather(*calls, return_exceptions=True)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    restarted = serve_ko(tmp_path, port)
    try:
        await wait_ready(url, restarted)
        async with httpx.AsyncClient(headers=ADMIN) as client:
            for call_id in in_flight:
                detail = (await client.get(f"{url}/v1/calls/{call_id}")).json()
                cdr = detail["cdr"]
                assert cdr["outcome"] == "interrupted"
                assert cdr["ended_at"] is not None and cdr["duration_s"] > 0
                types = [e["type"] for e in detail["events"]]
                assert types[0] == "call_started" and "listen" in types
                assert types[-1] == "call_ended"
                # the recording was on disk as the call went: kept, with what was said so far
                assert [r["duration_s"] > 1.0 for r in detail["recordings"]] == [True]
                wav = await client.get(f"{url}/v1/calls/{call_id}/recording")
                assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
            listed = (await client.get(f"{url}/v1/calls", params={"outcome": "interrupted"})).json()
            assert {c["id"] for c in listed["items"]} == set(in_flight)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)


async def _until_stored(url: str, call_ids: list[str], event_type: str,
                        timeout_s: float = 60.0) -> None:
    async with httpx.AsyncClient(headers=ADMIN, timeout=timeout_s) as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        waiting = set(call_ids)
        while waiting and loop.time() < deadline:
            for call_id in sorted(waiting):
                response = await client.get(f"{url}/v1/calls/{call_id}")
                if response.status_code == 200 and event_type in [
                        e["type"] for e in response.json()["events"]]:
                    waiting.discard(call_id)
            await asyncio.sleep(0.1)
    assert not waiting, f"no stored {event_type!r} event for {waiting} in {timeout_s} s"
