"""Driving the human side from tests: a WebRTC caller and an agent at the desk API.

``Caller`` is an aiortc peer calling a hotline (``POST /v1/webrtc/offer``) that follows its
call's live events (as the administrator) and presses keys when the flow listens.
``DeskAgent`` is an agent account signed in at ``/v1/auth/login``; it follows its desk
WebSocket and answers offers with an aiortc peer of its own.
Both send silence until told to play something (``play``) and keep what they hear.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from app.auth import Role
from app.events import CALL_SAMPLE_RATE_HZ
from app.media.audio import Pcm, resample
from app.sim.caller import CallerPeer
from tests.helpers.auth import ADMIN, create_user, sign_in

SILENCE = Pcm(b"\x00" * 3200, CALL_SAMPLE_RATE_HZ)


def moving_clock(start: datetime) -> Callable[[], datetime]:
    """Real time, shifted to start at ``start`` (business hours in any test run)."""
    t0 = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - t0)


class _Feed:
    """Messages from a WebSocket, kept in order with their arrival time."""

    def __init__(self) -> None:
        self.items: list[tuple[float, dict[str, Any]]] = []
        self._new = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def follow(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.task = asyncio.create_task(self._read(url, headers or {}), name=f"feed-{url}")

    async def _read(self, url: str, headers: dict[str, str]) -> None:
        from websockets.asyncio.client import connect

        async with connect(url, additional_headers=headers, open_timeout=10) as ws:
            async for message in ws:
                self.items.append((time.perf_counter(), json.loads(message)))
                self._new.set()

    async def wait(self, match: Callable[[dict[str, Any]], bool], timeout_s: float = 60,
                   after: int = 0) -> tuple[int, dict[str, Any]]:
        """The first message from index ``after`` matching ``match``: (index, message)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for i in range(after, len(self.items)):
                if match(self.items[i][1]):
                    return i, self.items[i][1]
            if self.task is not None and self.task.done():
                self.task.result()
                raise AssertionError("the WebSocket closed before the message came")
            left = deadline - time.monotonic()
            if left <= 0:
                tail = [m.get("type") for _, m in self.items[-15:]]
                raise AssertionError(f"no matching message within {timeout_s}s; last: {tail}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def play(peer: CallerPeer, pcm: Pcm) -> None:
    """Send ``pcm`` now (after what is queued); silence follows."""
    peer.source.buffer.enqueue(resample(pcm.data, pcm.sample_rate_hz, CALL_SAMPLE_RATE_HZ))


def heard_since(peer: CallerPeer, start_bytes: int) -> bytes:
    return bytes(peer.received[start_bytes:])


class Caller:
    def __init__(self, url: str) -> None:
        self.url = url
        self.peer = CallerPeer(SILENCE)
        self.events = _Feed()
        self.call_id = ""

    async def dial(self, number: str, *, locale: str | None = "zh",
                   caller_number: str | None = None) -> str:
        body: dict[str, Any] = {"sdp": await self.peer.create_offer(), "type": "offer",
                                "hotline_number": number}
        if locale:
            body["locale"] = locale
        if caller_number:
            body["caller_number"] = caller_number
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            response = await client.post("/v1/webrtc/offer", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        self.call_id = answer["call_id"]
        ws = "ws" + self.url.removeprefix("http") + f"/v1/calls/{self.call_id}/events"
        self.events.follow(ws, ADMIN)  # every event (the caller's pass sees a few)
        await self.peer.accept_answer(answer["sdp"])
        await asyncio.wait_for(self.peer.connected.wait(), 20)
        await asyncio.wait_for(self.peer.channel_open.wait(), 20)
        return self.call_id

    async def event(self, kind: str, timeout_s: float = 60, after: int = 0,
                    **fields: Any) -> tuple[int, dict[str, Any]]:
        return await self.events.wait(
            lambda e: e.get("type") == kind and all(e.get(k) == v for k, v in fields.items()),
            timeout_s, after)

    async def press_at(self, node: str, digit: str, timeout_s: float = 60) -> int:
        """Once the flow prompts at ``node``, press ``digit`` (barging in)."""
        i, _ = await self.event("node_entered", timeout_s, node=node)
        j, _ = await self.event("prompt_played", timeout_s, after=i)
        self.peer.send_dtmf(digit)
        return j

    async def close(self) -> None:
        await self.peer.close()
        await self.events.close()


class DeskAgent:
    def __init__(self, url: str, agent_id: str) -> None:
        self.url = url
        self.agent_id = agent_id
        # A pooled connection idle as long as the server's keep-alive (uvicorn: 5 s, httpx's
        # default expiry too) may be closed by the server just as a request reuses it
        # (httpx.ReadError, seen once waiting for an offer); expire ours well before.
        self.client = httpx.AsyncClient(base_url=url, timeout=30,
                                        limits=httpx.Limits(keepalive_expiry=2.0))
        self.csrf = ""
        self.feed = _Feed()
        self.peers: list[CallerPeer] = []

    async def login(self, status: str | None = "available") -> None:
        """An agent account named as the agent (created with the bootstrap admin token),
        signed in through ``/v1/auth/login``; the desk WebSocket followed."""
        await create_user(self.client, self.url, self.agent_id, Role.AGENT)
        cookies, self.csrf = await sign_in(self.client, self.url, self.agent_id)
        self.client.cookies.update(cookies)
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())
        self.feed.follow("ws" + self.url.removeprefix("http") + "/v1/desk/ws",
                         {"Cookie": cookie})
        await self.feed.wait(lambda m: m["type"] == "hello", 20)
        if status is not None:
            await self.post("/v1/desk/status", {"status": status})

    async def post(self, path: str, body: dict[str, Any] | None = None,
                   expect: int = 200) -> Any:
        response = await self.client.post(path, json=body or {},
                                          headers={"X-CSRF-Token": self.csrf})
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response.json()

    async def offer(self, timeout_s: float = 60, after: int = 0) -> tuple[int, dict[str, Any]]:
        return await self.feed.wait(lambda m: m["type"] == "offer", timeout_s, after)

    async def answer(self, offer_id: str) -> CallerPeer:
        """Answer with a WebRTC peer (SDP sent with the answer); returns it connected."""
        peer = CallerPeer(SILENCE)
        self.peers.append(peer)
        body = await self.post(f"/v1/desk/offers/{offer_id}/answer",
                               {"sdp": await peer.create_offer()})
        await peer.accept_answer(body["sdp"])
        await asyncio.wait_for(peer.connected.wait(), 20)
        return peer

    async def connect_media(self, offer_id: str) -> CallerPeer:
        """Connect the desk's audio while the offer rings (``/offers/{id}/media``)."""
        peer = CallerPeer(SILENCE)
        self.peers.append(peer)
        body = await self.post(f"/v1/desk/offers/{offer_id}/media",
                               {"sdp": await peer.create_offer()})
        await peer.accept_answer(body["sdp"])
        await asyncio.wait_for(peer.connected.wait(), 20)
        return peer

    async def action(self, call_id: str, action: str, body: dict[str, Any] | None = None,
                     expect: int = 200) -> Any:
        return await self.post(f"/v1/desk/calls/{call_id}/actions/{action}", body, expect)

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()
        await self.feed.close()
        await self.client.aclose()
