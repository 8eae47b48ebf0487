"""Web chat throughput on one server process: ``python -m bench.chat_load [--levels 1,8,32]``.

A real ``hotline serve`` runs as a separate process (the demo hotline, the shipped intent
classifier, SQLite record, the demo order service over HTTP); this process runs N concurrent
visitors over the chat WebSocket. Each visitor chats again and again for ``--seconds``:
"中文" (button) -> "帮我看看订单到哪了" (typed: classified) -> "4567" (typed: the order
number) -> "正确" (button: the order lookup webhook) -> "结束" (button: goodbye).

Printed per level: visitor messages answered per second, the reply time (message sent ->
the bot's first message back) p50/p95, the turn time (sent -> the bot waits again) p95, the
session set-up time (POST) p50, and the server's CPU time per message (/proc).

Baseline, measured in the same run in this process, without the WebSocket and the record:
the same inputs stepped through the flow engine alone (intents given), and through the
engine with the same classifier (``NluService.understand_async`` on its executor) at the
same concurrency. The ratio chat / baseline is the cost of the chat path (WebSocket, JSON,
session, record writer, webhook over HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from app.events import IntentResult
from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.flows.runtime import CallContext, CallerInput, Step
from app.nlu.service import NluService
from app.settings import Settings
from tests.helpers.chat_server import DEMO, open_demo_flow, start_server, stop_server

CONVERSATION: list[tuple[str, str]] = [
    ("button", "中文"), ("text", "帮我看看订单到哪了"), ("text", "4567"), ("button", "正确"),
    ("button", "结束"),
]
ORDER = {"item_zh": "滚筒洗衣机", "item_en": "washer", "status_zh": "已发货",
         "status_en": "has shipped", "eta": "2026-11-28"}
TIMEOUT_S = 120.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Level:
    visitors: int
    chats: int = 0
    messages: int = 0
    failures: int = 0
    reply_ms: list[float] = field(default_factory=list)
    turn_ms: list[float] = field(default_factory=list)
    setup_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu_s: float = 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _until(ws: Any, *types: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        if message["type"] in types:
            return dict(message)


async def _reply(ws: Any) -> dict[str, Any]:
    """The bot's first message, then the next question (or the end)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        if message["type"] == "message" and message["from"] == "bot":
            return dict(message)
        if message["type"] in ("ask", "end"):
            raise RuntimeError(f"the bot did not answer before its {message['type']}")


async def one_chat(http: httpx.AsyncClient, ws_base: str, level: Level) -> None:
    t0 = time.monotonic()
    response = await http.post("/v1/chat/sessions", json={"hotline_number": DEMO,
                                                          "locale": "zh"})
    response.raise_for_status()
    level.setup_ms.append((time.monotonic() - t0) * 1000)
    session = response.json()
    async with websockets.connect(ws_base + session["websocket"],
                                  subprotocols=session["protocols"]) as ws:
        ask = await _until(ws, "ask")
        for kind, value in CONVERSATION:
            if kind == "button":
                button = next(b for b in ask["buttons"] if b["label"] == value)
                frame = {"type": "button", "value": button["value"], "ask": ask["seq"]}
            else:
                frame = {"type": "text", "text": value}
            sent = time.monotonic()
            await ws.send(json.dumps(frame, ensure_ascii=False))
            await _reply(ws)
            level.reply_ms.append((time.monotonic() - sent) * 1000)
            ask = await _until(ws, "ask", "end")
            level.turn_ms.append((time.monotonic() - sent) * 1000)
            level.messages += 1
        if ask["type"] != "end" or ask["outcome"] != "self_service":
            raise RuntimeError(f"the chat ended {ask}")
    level.chats += 1


async def visitor(url: str, level: Level, deadline: float) -> None:
    ws_base = url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S) as http:
        while time.monotonic() < deadline:
            try:
                await one_chat(http, ws_base, level)
            except (OSError, RuntimeError, TimeoutError, httpx.HTTPError,
                    websockets.WebSocketException, StopIteration) as exc:
                level.failures += 1
                print(f"  chat failed: {type(exc).__name__}: {exc}")


async def chat_level(url: str, pid: int, visitors: int, seconds: float) -> Level:
    level = Level(visitors)
    cpu0, t0 = cpu_s(pid), time.monotonic()
    await asyncio.gather(*(visitor(url, level, t0 + seconds) for _ in range(visitors)))
    level.elapsed_s = time.monotonic() - t0
    level.cpu_s = cpu_s(pid) - cpu0
    return level


# -- baseline: the same inputs without the WebSocket and the record ----------------------------
def _settle(engine: FlowEngine, step: Step) -> Step:
    while step.state.phase == "webhook":
        step = engine.step(step.state, CallerInput.webhook_result(True, 200, dict(ORDER)))
    return step


async def baseline_chat(engine: FlowEngine, nlu: NluService | None, level: Level) -> None:
    """One conversation through the engine (and the classifier when ``nlu`` is given)."""
    step = _settle(engine, engine.start("demo_hotline", CallContext(locale="zh")))
    for kind, value in CONVERSATION:
        sent = time.monotonic()
        if kind == "button":
            keys = {"中文": "1", "正确": "1", "结束": "2"}[value]
            inp = CallerInput.dtmf(keys)
        elif nlu is None:
            intent = "order_status" if "订单" in value else None
            inp = CallerInput.speech(value, intent=IntentResult(
                text=value, locale="zh", intent=intent, confidence=0.9 if intent else 0.0))
        else:
            understood = await nlu.understand_async(value, "zh")
            inp = CallerInput.speech(value, intent=understood.intent,
                                     entities=understood.entities,
                                     sentiment=understood.sentiment)
        step = _settle(engine, engine.step(step.state, inp))
        level.reply_ms.append((time.monotonic() - sent) * 1000)
        level.messages += 1
    if step.state.outcome != "self_service":
        raise RuntimeError(f"baseline conversation ended {step.state.outcome}")
    level.chats += 1


async def baseline_level(engine: FlowEngine, nlu: NluService | None, visitors: int,
                         seconds: float) -> Level:
    level = Level(visitors)
    t0 = time.monotonic()

    async def one() -> None:
        while time.monotonic() < t0 + seconds:
            await baseline_chat(engine, nlu, level)
            await asyncio.sleep(0)  # engine alone never awaits: let the others run

    await asyncio.gather(*(one() for _ in range(visitors)))
    level.elapsed_s = time.monotonic() - t0
    return level


def _row(name: str, r: Level) -> str:
    rate = r.messages / r.elapsed_s if r.elapsed_s else float("nan")
    cpu = f"{1000 * r.cpu_s / r.messages:>9.1f}" if r.messages and r.cpu_s else f"{'-':>9}"
    setup = f"{pct(r.setup_ms, 50):>9.1f}" if r.setup_ms else f"{'-':>9}"
    turn = f"{pct(r.turn_ms, 95):>9.1f}" if r.turn_ms else f"{'-':>9}"
    return (f"{name:<28} {r.visitors:>4} {r.chats:>6} {r.messages:>6} {r.failures:>4} "
            f"{rate:>8.1f} {pct(r.reply_ms, 50):>9.1f} {pct(r.reply_ms, 95):>9.1f} {turn} "
            f"{setup} {cpu}")


async def main_async(levels: list[int], seconds: float) -> None:
    header = (f"{'':<28} {'conc':>4} {'chats':>6} {'msgs':>6} {'fail':>4} {'msg/s':>8} "
              f"{'reply p50':>9} {'reply p95':>9} {'turn p95':>9} {'setup p50':>9} "
              f"{'CPU ms/msg':>9}")
    with tempfile.TemporaryDirectory(prefix="chat-load-") as tmp_dir:
        tmp = Path(tmp_dir)
        catalog_nlu = NluService(Settings(intent_train_on_start=False))
        problem = await asyncio.to_thread(catalog_nlu.load)
        if problem:
            raise SystemExit(f"the shipped intent model does not load: {problem}")
        for text in ("你好", "hello"):  # lazy parts (the sentiment model) load here
            await catalog_nlu.understand_async(text, "zh" if text == "你好" else "en")
        engine = FlowEngine(load_flows(open_demo_flow(tmp / "flows"),
                                       catalog_nlu.catalog.names()), catalog_nlu.catalog)
        base_rows = [await baseline_level(engine, None, 1, seconds / 2)]
        base_rows += [await baseline_level(engine, catalog_nlu, n, seconds / 2) for n in levels]
        catalog_nlu.close()
        print(f"server starting (demo hotline, shipped classifier) in {tmp} ...", flush=True)
        server = await asyncio.to_thread(
            start_server, tmp / "server", nlu=True, HOTLINE_LOG_LEVEL="WARNING",
            HOTLINE_CHAT_IP_SESSIONS_PER_MINUTE="1000000",
            HOTLINE_CHAT_IP_MESSAGES_PER_MINUTE="10000000",
            HOTLINE_CHAT_MESSAGES_PER_MINUTE="100000")
        try:
            await chat_level(server.url, server.proc.pid, 1, 1.0)  # warm-up: lazy loads
            rows = []
            for n in levels:
                print(f"  {n} visitors for {seconds:g} s ...", flush=True)
                rows.append(await chat_level(server.url, server.proc.pid, n, seconds))
        finally:
            await asyncio.to_thread(stop_server, server)
    print("chat messages per second on one server process (ms; reply = message sent -> the "
          "bot's first message; turn = sent -> the bot waits again)")
    print(header)
    print(_row("baseline: engine alone", base_rows[0]))
    for r in base_rows[1:]:
        print(_row("baseline: engine+classifier", r))
    for r in rows:
        print(_row("chat: WebSocket+record", r))
    for base, r in zip(base_rows[1:], rows, strict=True):
        b_rate, c_rate = base.messages / base.elapsed_s, r.messages / r.elapsed_s
        print(f"at {r.visitors} visitors: chat {c_rate:.1f} msg/s = {c_rate / b_rate:.2f}x the "
              f"engine+classifier baseline ({b_rate:.1f} msg/s); reply p95 "
              f"{pct(r.reply_ms, 95):.0f} ms vs {pct(base.reply_ms, 95):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,32", help="concurrent visitors, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="per level")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if any(n < 1 or n > 500 for n in levels):
        parser.error("levels must be between 1 and 500 visitors")
    asyncio.run(main_async(levels, args.seconds))


if __name__ == "__main__":
    main()
