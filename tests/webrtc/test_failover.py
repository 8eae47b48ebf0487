"""A WebRTC caller given several nodes: a node that answers 503 (draining, full) or nothing is
skipped for the next; when every node refused, the offer is tried again after Retry-After."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from app.media.audio import Pcm
from app.sim.caller import CallError, KeyPress, place_call
from app.sim.cli import InProcessServer, serve_in_process
from tests.helpers.auth import ADMIN
from tests.helpers.live import NUMBER, Live, live_settings
from tests.helpers.server import free_port

SILENCE = Pcm(bytes(16_000 * 2 * 2), 16_000)


@pytest_asyncio.fixture
async def two_nodes(tmp_path: Path) -> AsyncIterator[tuple[InProcessServer, InProcessServer]]:
    for name in ("node-a", "node-b"):
        (tmp_path / name).mkdir()
    async with contextlib.AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(serve_in_process(
            live_settings(tmp_path / name, node_id=name))) for name in ("node-a", "node-b")]
        yield nodes[0], nodes[1]


async def _call_ids(node: InProcessServer | Live) -> list[str]:
    async with httpx.AsyncClient(base_url=node.url, headers=ADMIN, timeout=30) as client:
        return [c["id"] for c in (await client.get("/v1/calls")).json()["items"]]


async def test_a_refused_or_silent_node_is_skipped_for_the_next(
        two_nodes: tuple[InProcessServer, InProcessServer]) -> None:
    node_a, node_b = two_nodes
    node_a.app.state.calls.draining = True  # what SIGTERM does: 503 + Retry-After
    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a node lost
    result = await place_call([gone, node_a.url, node_b.url], SILENCE, hotline_number=NUMBER,
                              dtmf=[KeyPress("1")], timeout_s=40)
    assert result.call_id in await _call_ids(node_b)  # node-b took it, and owns its media
    assert await _call_ids(node_a) == []
    assert any("does not answer" in n for n in result.notes)
    assert any(f"{node_a.url} is full or draining (503)" in n for n in result.notes)
    assert result.dtmf_sent == ["1"] and result.ended_by == "server"  # events via node-b
    assert "call_ended" in [e["type"] for e in result.events]


async def test_when_every_node_refuses_the_caller_retries_after_retry_after(live: Live) -> None:
    calls = live.app.state.calls
    calls.draining = True
    with pytest.raises(CallError, match=r"no node took the call: .*503"):
        await place_call([live.url], SILENCE, hotline_number=NUMBER, retry_wait_max_s=0.1)

    def node_comes_back(note: str) -> None:  # the node frees up while the caller waits
        if "trying again" in note:
            calls.draining = False

    result = await place_call([live.url], SILENCE, hotline_number=NUMBER,
                              dtmf=[KeyPress("1")], timeout_s=40, retry_wait_max_s=0.2,
                              on_note=node_comes_back)
    assert result.call_id in await _call_ids(live)
    assert any("trying again in" in n for n in result.notes)

