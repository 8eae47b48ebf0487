"""Admission control: beyond ``max_calls`` an offer gets 503 + Retry-After; calls up go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from app.media.audio import Pcm
from app.media.webrtc import WebRtcCallMedia
from app.sim.caller import CallerPeer
from app.sim.cli import InProcessServer, serve_in_process
from tests.helpers.live import FLOW, NUMBER, live_settings
from tests.helpers.wait import wait_until


@pytest_asyncio.fixture
async def two_call_node(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    # a long no-input timeout: the calls stay in their menu until the callers hang up
    flow = tmp_path / "ko_webrtc.yaml"
    flow.write_text(FLOW.read_text(encoding="utf-8").replace("timeout_s: 4", "timeout_s: 120"),
                    encoding="utf-8")
    # generous ICE/media timeouts: on a loaded box no call may end by itself mid-test
    settings = live_settings(tmp_path, flow=flow, max_calls=2, webrtc_ice_timeout_s=60,
                             webrtc_media_timeout_s=60)
    async with serve_in_process(settings) as served:
        yield served


async def _offer(client: httpx.AsyncClient, peer: CallerPeer) -> httpx.Response:
    return await client.post("/v1/webrtc/offer", json={
        "sdp": await peer.create_offer(), "type": "offer", "hotline_number": NUMBER})


async def test_offers_beyond_max_calls_get_503_and_calls_up_go_on(
        two_call_node: InProcessServer) -> None:
    calls = two_call_node.app.state.calls
    peers = [CallerPeer(Pcm(b"", 16_000), codecs=["audio/PCMU"]) for _ in range(4)]
    before = WebRtcCallMedia.open_connections
    try:
        async with httpx.AsyncClient(base_url=two_call_node.url, timeout=30) as client:
            # three offers at once: all pass the early check, start_call admits two
            answers = await asyncio.gather(*(_offer(client, p) for p in peers[:3]))
            statuses = sorted(r.status_code for r in answers)
            assert statuses == [200, 200, 503], [r.text for r in answers]
            refused = next(r for r in answers if r.status_code == 503)
            assert refused.headers["retry-after"] == "10"
            assert "limit of 2 concurrent calls" in refused.json()["detail"]
            assert WebRtcCallMedia.open_connections == before + 2  # the refused one closed

            up = [(p, r.json()) for p, r in zip(peers[:3], answers, strict=True)
                  if r.status_code == 200]
            for peer, answer in up:
                await peer.accept_answer(answer["sdp"])
                await asyncio.wait_for(peer.connected.wait(), 15)
            # a fourth caller is refused early (no ICE work), the two calls are untouched
            late = await _offer(client, peers[3])
            assert late.status_code == 503 and late.headers["retry-after"] == "10"
            assert sorted(calls.active()) == sorted(a["call_id"] for _, a in up)
            assert WebRtcCallMedia.open_connections == before + 2
            listening = [a["call_id"] for _, a in up]
            await wait_until(lambda: all(
                any(e["type"] == "listen" for e in calls.session(c).events.history)
                for c in listening), what="both calls reach their menu")

            # one caller hangs up: its place is free again, the other call is still up
            first_peer, first = up[0]
            await first_peer.close()
            await wait_until(lambda: first["call_id"] not in calls.active(),
                             what="the hung-up call ends")
            assert calls.active() == [up[1][1]["call_id"]]
            again = CallerPeer(Pcm(b"", 16_000), codecs=["audio/PCMU"])
            peers.append(again)
            answer = await _offer(client, again)
            assert answer.status_code == 200
            await again.accept_answer(answer.json()["sdp"])
            await asyncio.wait_for(again.connected.wait(), 15)
    finally:
        for peer in peers:
            await peer.close()
        await wait_until(lambda: not calls.active(), timeout_s=60, what="every call ends")
