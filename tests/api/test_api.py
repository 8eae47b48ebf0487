"""The HTTP/WebSocket API on the real app: health, readiness, metrics, call records, live events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from app.media.audio import Pcm
from app.settings import Settings
from app.sim.caller import KeyPress, place_call
from app.sim.cli import serve_in_process
from tests.helpers.auth import ADMIN
from tests.helpers.live import live_settings
from tests.helpers.speech import have_espeak
from tests.helpers.tools import delete_sqlite_files, needs

FLOW = Path(__file__).resolve().parents[1] / "call" / "data" / "ko_calls.yaml"
NUMBER = "4000000001"

pytestmark = needs(have_espeak(), "espeak-ng")


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return live_settings(tmp_path, flow=FLOW, **overrides)


async def test_without_speech_models_the_server_is_ready_keypad_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path, asr_models={"ko": "vosk-model-missing-0.1"})
    async with serve_in_process(settings) as served, httpx.AsyncClient(headers=ADMIN) as client:
        url = served.url
        assert (await client.get(f"{url}/healthz")).json() == {"status": "ok"}
        ready = await client.get(f"{url}/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["keypad_only"] is True
        assert "hotline models pull vosk-model-missing-0.1" in body["degraded"]["asr:ko"]
        node = settings.node_id  # one node, no Redis: it leads its own singletons
        assert body["cluster"] == {"node_id": node, "leader": node, "leading": True,
                                   "routing_bus": None}  # one node: no routing bus
        metrics = (await client.get(f"{url}/metrics")).text
        assert "hotline_calls_active" in metrics
        assert f'hotline_cluster_leader{{node_id="{node}"}} 1.0' in metrics
        assert (await client.get(f"{url}/docs")).status_code == 200
        hotlines = (await client.get(f"{url}/v1/hotlines")).json()
        assert hotlines == [{"number": NUMBER, "flow_id": "ko_calls", "locales": ["ko"],
                             "default_locale": "ko"}]
        # a keypad caller still gets through the menu
        result = await place_call(url, Pcm(b"\x00" * 16_000 * 2 * 25, 16_000),
                                  hotline_number=NUMBER, dtmf=[KeyPress("1")], timeout_s=40)
        detail = await _finished(client, url, result.call_id)
        assert detail["cdr"]["outcome"] == "completed"
        assert "one" in detail["flow_path"]


async def _finished(client: httpx.AsyncClient, url: str, call_id: str) -> dict[str, Any]:
    """The call's record once the server has written its end (just after the caller hears it)."""
    for _ in range(100):
        detail: dict[str, Any] = (await client.get(f"{url}/v1/calls/{call_id}")).json()
        if detail["cdr"]["outcome"] is not None:
            return detail
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_id} never ended")


async def _collect_all_events(url: str, into: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with connect(url.replace("http", "ws") + "/v1/calls/events",
                       additional_headers=ADMIN) as ws:
        ready.set()
        async for message in ws:
            event = json.loads(message)
            into.append(event)
            if event["type"] == "call_ended":
                return


async def test_call_records_filters_and_event_sockets(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with serve_in_process(settings) as served, httpx.AsyncClient(headers=ADMIN) as client:
        url = served.url
        events: list[dict[str, Any]] = []
        subscribed = asyncio.Event()
        watcher = asyncio.create_task(_collect_all_events(url, events, subscribed))
        await asyncio.wait_for(subscribed.wait(), 10)
        result = await place_call(url, Pcm(b"\x00" * 16_000 * 2 * 25, 16_000),
                                  hotline_number=NUMBER, dtmf=[KeyPress("1")], timeout_s=40)
        await asyncio.wait_for(watcher, 20)
        await _finished(client, url, result.call_id)
        assert {e["call_id"] for e in events} == {result.call_id}
        types = [e["type"] for e in events]
        assert types[0] == "call_started" and types[-1] == "call_ended"
        assert "dtmf" in types and "node_entered" in types

        page = (await client.get(f"{url}/v1/calls", params={"number": NUMBER,
                                                            "outcome": "completed"})).json()
        assert [c["id"] for c in page["items"]] == [result.call_id] and page["total"] == 1
        none = (await client.get(f"{url}/v1/calls", params={"outcome": "error"})).json()
        assert none["items"] == [] and none["total"] == 0
        bad = await client.get(f"{url}/v1/calls", params={"limit": 0})
        assert bad.status_code == 422
        assert (await client.get(f"{url}/v1/calls/nope")).status_code == 404
        assert (await client.get(f"{url}/v1/calls/nope/recording")).status_code == 404

        # a finished call's socket replays its stored log, in order, then closes
        replay: list[dict[str, Any]] = []
        ws_url = url.replace("http", "ws") + f"/v1/calls/{result.call_id}/events"
        async with connect(ws_url, additional_headers=ADMIN) as ws:
            async for message in ws:
                replay.append(json.loads(message))
        assert [e["seq"] for e in replay] == sorted(e["seq"] for e in replay)
        assert replay[0]["type"] == "call_started" and replay[-1]["type"] == "call_ended"
        assert all(e["call_id"] == result.call_id for e in replay)


async def test_readyz_is_not_ready_when_records_or_recordings_cannot_be_written(
        tmp_path: Path) -> None:
    settings = _settings(tmp_path, asr_models={})
    async with serve_in_process(settings) as served, httpx.AsyncClient(headers=ADMIN) as client:
        url = served.url
        assert (await client.get(f"{url}/readyz")).status_code == 200
        # the recordings folder becomes a file: recordings cannot be kept
        settings.recordings_dir.rmdir()
        settings.recordings_dir.write_text("x")
        ready = await client.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert "cannot write recordings" in ready.json()["problems"]["recordings"]
        settings.recordings_dir.unlink()
        # the database file is deleted under the running server: writes are refused
        delete_sqlite_files(settings.data_dir / 'hotline.db')
        ready = await client.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert "deleted or replaced" in ready.json()["problems"]["database"]
