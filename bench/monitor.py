"""The live monitor following many calls: ``python -m bench.monitor [--levels 1,50]``.

A real ``hotline serve`` runs as its own process (the demo hotline, buttons only, SQLite
record). For each level N, N web chats (the cheapest real calls) are kept up at once over
the chat WebSocket: each visitor opens a chat, picks "中文", stays on the menu for
``--hold`` seconds, hangs up and opens the next one, so N calls are live at any moment and
their events (call start, nodes, prompts, the visitor's input, call end) keep coming. One
monitor client follows ``/v1/calls/events`` with the admin token, as the monitor page does,
and polls ``/v1/monitor`` every half second.

Printed per level: events seen, the delay from each event's ``at`` to its arrival at the
monitor client (p50/p95/p99/max; same machine, same clock), the ``/v1/monitor`` poll time
(p50/p95/max) and the live calls it saw (mean/max). The 1-call level is the baseline, in
the same run. The issue's figure: the monitor follows 50 live calls with <= 1 s delay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.chat_load import pct
from tests.helpers.auth import ADMIN_TOKEN
from tests.helpers.chat_server import DEMO, start_server, stop_server

TIMEOUT_S = 60.0


@dataclass
class Level:
    calls: int
    delays_ms: list[float] = field(default_factory=list)
    poll_ms: list[float] = field(default_factory=list)
    live_seen: list[int] = field(default_factory=list)
    chats: int = 0
    failures: int = 0
    first_failure: str = ""


async def _until_ask(ws: Any) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        if message["type"] in ("ask", "end"):
            return message


async def one_chat(http: httpx.AsyncClient, ws_base: str, hold_s: float) -> None:
    response = await http.post("/v1/chat/sessions", json={"hotline_number": DEMO,
                                                          "locale": "zh"})
    response.raise_for_status()
    session = response.json()
    async with websockets.connect(ws_base + session["websocket"],
                                  subprotocols=session["protocols"]) as ws:
        ask = await _until_ask(ws)
        button = next(b for b in ask["buttons"] if b["label"] == "中文")
        await ws.send(json.dumps({"type": "button", "value": button["value"],
                                  "ask": ask["seq"]}, ensure_ascii=False))
        await _until_ask(ws)
        await asyncio.sleep(hold_s)  # the call stays up on the menu


async def visitor(url: str, level: Level, deadline: float, hold_s: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S) as http:
        while time.monotonic() < deadline:
            try:
                await one_chat(http, url.replace("http://", "ws://"), hold_s)
                level.chats += 1
            except (OSError, httpx.HTTPError, websockets.WebSocketException,
                    TimeoutError, StopIteration) as exc:
                level.failures += 1
                level.first_failure = level.first_failure or repr(exc)[:200]
                await asyncio.sleep(1.0)  # no tight retry loop


async def follow(url: str, level: Level, ready: asyncio.Event) -> None:
    ws_url = url.replace("http://", "ws://") + "/v1/calls/events"
    async with websockets.connect(ws_url, additional_headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}"}) as ws:
        ready.set()
        async for raw in ws:
            arrived = datetime.now(UTC)
            event = json.loads(raw)
            at = event.get("at")
            if isinstance(at, str):
                sent = datetime.fromisoformat(at)
                level.delays_ms.append((arrived - sent).total_seconds() * 1000)


async def poll(url: str, level: Level, deadline: float) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S, headers=headers) as http:
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            response = await http.get("/v1/monitor")
            level.poll_ms.append((time.monotonic() - t0) * 1000)
            response.raise_for_status()
            level.live_seen.append(len(response.json()["calls"]))
            await asyncio.sleep(0.5)


async def run_level(url: str, calls: int, seconds: float, hold_s: float) -> Level:
    level = Level(calls)
    ready = asyncio.Event()
    follower = asyncio.create_task(follow(url, level, ready))
    await asyncio.wait_for(ready.wait(), TIMEOUT_S)
    deadline = time.monotonic() + seconds
    await asyncio.gather(poll(url, level, deadline),
                         *(visitor(url, level, deadline, hold_s) for _ in range(calls)))
    await asyncio.sleep(1.0)  # the last hang-ups' events reach the monitor
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)
    return level


def report(level: Level) -> str:
    d, p, live = level.delays_ms, level.poll_ms, level.live_seen
    mean_live = sum(live) / len(live) if live else 0.0
    return (f"{level.calls:>5} | {len(d):>6} | {pct(d, 50):7.1f} {pct(d, 95):7.1f} "
            f"{pct(d, 99):7.1f} {max(d, default=float('nan')):7.1f} | {pct(p, 50):6.1f} "
            f"{pct(p, 95):6.1f} {max(p, default=float('nan')):6.1f} | {mean_live:5.1f} "
            f"{max(live, default=0):4d} | {level.chats:>5} {level.failures:>4}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1,50", help="live calls per level")
    parser.add_argument("--seconds", type=float, default=20.0, help="per level")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds a chat stays up")
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        server = start_server(Path(tmp), nlu=False, HOTLINE_LOG_LEVEL="WARNING",
                              HOTLINE_CHAT_IP_SESSIONS_PER_MINUTE="1000000",
                              HOTLINE_CHAT_IP_MESSAGES_PER_MINUTE="10000000",
                              HOTLINE_CHAT_MESSAGES_PER_MINUTE="100000")
        try:
            results = [asyncio.run(run_level(server.url, n, args.seconds, args.hold))
                       for n in levels]
        finally:
            stop_server(server)
    print("monitor feed: event 'at' -> arrival at a /v1/calls/events client; /v1/monitor poll")
    print("calls | events | delay ms p50 p95 p99 max | poll ms p50 p95 max | live mean max "
          "| chats fail")
    for level in results:
        print(report(level))
    for level in results:
        if level.failures:
            print(f"{level.calls} calls: first failure {level.first_failure}")
    print("issue 11 target: delay <= 1000 ms with 50 live calls")


if __name__ == "__main__":
    main()
