"""WebRTC test fixtures: two real aiortc peers in one process, signalled directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest_asyncio

from app.media.audio import Pcm
from app.media.webrtc import WebRtcCallMedia
from app.settings import Settings
from app.sim.caller import CallerPeer
from app.sim.cli import serve_in_process
from tests.helpers.live import Live, live_settings

Pair = tuple[CallerPeer, WebRtcCallMedia]
Connect = Callable[..., Awaitable[Pair]]


@pytest_asyncio.fixture
async def connect(settings: Settings) -> AsyncIterator[Connect]:
    """``await connect(pcm, codecs=..., wait=True, **settings_overrides)`` -> (caller, media)."""
    made: list[Pair] = []

    async def _connect(pcm: Pcm, *, codecs: Sequence[str] = (), wait: bool = True,
                       **overrides: object) -> Pair:
        call_settings = settings.model_copy(update=overrides)
        caller = CallerPeer(pcm, codecs=codecs)
        offer = await caller.create_offer()
        media, answer = await WebRtcCallMedia.accept_offer(call_settings, offer)
        made.append((caller, media))
        await caller.accept_answer(answer)
        if wait:
            await asyncio.wait_for(caller.connected.wait(), 10)
            await asyncio.wait_for(caller.channel_open.wait(), 10)
        return caller, media

    yield _connect
    for caller, media in made:
        await caller.close()
        await media.close()


@pytest_asyncio.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    """``create_app`` served by uvicorn on a free 127.0.0.1 port."""
    async with serve_in_process(live_settings(tmp_path)) as served:
        yield Live(served.url, served.app, served.settings)
