"""Handoff to a human: ``python -m bench.handoff [--rounds-1 10] [--rounds-many 3] [--many 8]``.

The real app (``hotline serve`` in its own process; the demo number served by a short
"press 0" flow, keypad only),
``--many`` (8) agent accounts signed in at the desk API (WebSocket feed), and aiortc callers:

- handoff latency: the caller presses 0 -> the offer with the packet arrives on the agent's
  desk WebSocket (includes the flow's short "please hold" prompt before the transfer), and
  the system part alone: ``handoff_requested`` on the caller's event feed -> the offer on
  the desk; p50/p95 with 1 call at a time and with ``--many`` calls at once (the issue's
  figure is at 16);
- answer -> first audio both ways: the desk connects its audio while the offer rings
  (``/offers/{id}/media``), then answers; from the answer request to the first 20 ms of the
  other side's tone heard by the agent (caller's 440 Hz) and by the caller (agent's 1000 Hz);
  and the server's own part (``agent_connected.setup_ms``: the answer accepted -> the bridge
  running). The clients' event loop lag is printed too: with 8 calls this process runs 16
  aiortc peers and the client-side figures carry its lag.

Baselines measured in the same run: a ``/healthz`` round trip (HTTP on this loop) and a bare
aiortc pair (a call leg playing a tone to a connected peer: WebRTC's own first-audio time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app.media.audio import Pcm
from app.media.webrtc import WebRtcCallMedia
from app.settings import Settings
from app.sim.caller import CallerPeer
from bench.webrtc_calls import percentile
from tests.handoff.routing import short_flow
from tests.helpers.auth import ADMIN_TOKEN
from tests.helpers.desk import SILENCE, Caller, DeskAgent, play
from tests.helpers.server import free_port, wait_ready
from tests.helpers.tones import tone

NUMBER = "4008001234"
CALLER_HZ, AGENT_HZ = 440.0, 1000.0
AGENTS = [f"agent{i}" for i in range(1, 9)]  # as many as calls at once (--many)
FRAME = 640  # 20 ms at 16 kHz, s16


def routing_file(folder: Path) -> Path:
    agents = "\n".join(f"  {a}: {{name: {a}, languages: [zh], skills: {{general: 1}}}}"
                       for a in AGENTS)
    path = folder / "routing.yaml"
    path.write_text(f"""\
version: 1
agents:
{agents}
groups:
  g:
    strategy: longest_idle
    members: [{", ".join(AGENTS)}]
    skills: [general]
    ring_timeout_s: 60
    max_wait_s: 120
    wrap_up_s: 0
hotlines:
  - number: "{NUMBER}"
    flow: desk_short
    default: {{group: g}}
""", encoding="utf-8")
    return path


def first_tone_at(peer: CallerPeer, start: int, hz: float) -> int | None:
    """Index of the first 20 ms frame after byte ``start`` whose energy is mostly ``hz``."""
    data = bytes(peer.received[start:])
    n = len(data) // FRAME
    if n == 0:
        return None
    frames = np.frombuffer(data[: n * FRAME], dtype="<i2").astype(np.float64).reshape(n, -1)
    t = np.arange(frames.shape[1]) / 16_000
    ref = np.exp(-2j * np.pi * hz * t)
    power = np.abs(frames @ ref) ** 2 / frames.shape[1]
    total = np.sum(frames**2, axis=1) + 1e-9
    hits = np.nonzero((power * 2 / total > 0.6) & (total / frames.shape[1] > 1e5))[0]
    return int(hits[0]) if len(hits) else None


async def heard_after(peer: CallerPeer, start: int, hz: float, t0: float,
                      timeout_s: float = 30) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if first_tone_at(peer, start, hz) is not None:
            return time.perf_counter() - t0
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{hz} Hz never heard")


async def one_call(url: str, agents: dict[str, DeskAgent], out: dict[str, list[float]]
                   ) -> None:
    caller = Caller(url)
    try:
        play(caller.peer, Pcm(tone(CALLER_HZ, 120), 16_000))  # talks from the start
        call_id = await caller.dial(NUMBER, caller_number="+862165432100")
        i, _ = await caller.event("node_entered", node="menu")
        await caller.event("prompt_played", after=i)
        pressed = time.perf_counter()
        caller.peer.send_dtmf("0")
        j, _ = await caller.event("handoff_requested", after=i)
        requested = caller.events.items[j][0]
        offer: dict[str, Any] = {}
        agent: DeskAgent | None = None
        while agent is None:
            for a in agents.values():
                hit = [(t, m) for t, m in a.feed.items
                       if m["type"] == "offer" and m["call_id"] == call_id]
                if hit:
                    agent, (offered, offer) = a, hit[0]
                    break
            else:
                await asyncio.sleep(0.002)
        out["press_to_offer"].append(offered - pressed)
        out["requested_to_offer"].append(offered - requested)
        try:
            await answer_and_talk(caller, agent, offer, call_id, out)
        except (AssertionError, RuntimeError, TimeoutError) as exc:  # counted, not fatal
            out["failed_after_offer"].append(time.perf_counter())
            print(f"  a call failed after its offer: {exc!r}"[:300])
    finally:
        await caller.close()


async def answer_and_talk(caller: Caller, agent: DeskAgent, offer: dict[str, Any],
                          call_id: str, out: dict[str, list[float]]) -> None:
    """Connect the desk's audio, answer, time the first tone each way, hang up."""
    peer = await agent.connect_media(offer["offer_id"])
    try:
        play(peer, Pcm(tone(AGENT_HZ, 60), 16_000))
        at_caller, at_agent = len(caller.peer.received), len(peer.received)
        answered = time.perf_counter()
        await agent.post(f"/v1/desk/offers/{offer['offer_id']}/answer", {})
        try:
            caller_hears, agent_hears = await asyncio.gather(
                heard_after(caller.peer, at_caller, AGENT_HZ, answered),
                heard_after(peer, at_agent, CALLER_HZ, answered))
            out["answer_to_caller_hears"].append(caller_hears)
            out["answer_to_agent_hears"].append(agent_hears)
        except RuntimeError:  # counted: an overloaded client can miss the tone entirely
            out["audio_not_heard"].append(answered)
        _, connected = await caller.event("agent_connected")
        out["server_answer_to_bridge"].append(connected["setup_ms"] / 1000)
        await agent.action(call_id, "hangup")
        await caller.event("call_ended")
        await agent.feed.wait(lambda m: m["type"] == "agent_state"
                              and m.get("state") == "available", after=len(agent.feed.items) - 1)
    finally:
        agent.peers.remove(peer)
        await peer.close()


async def loop_lag(lags: list[float], period_s: float = 0.01) -> None:
    """How late this (the clients') event loop wakes: what the client-side figures carry."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(period_s)
        lags.append(max(0.0, time.perf_counter() - t0 - period_s))


async def bare_first_audio_s(settings: Settings) -> float:
    caller = CallerPeer(SILENCE)
    media, answer = await WebRtcCallMedia.accept_offer(settings, await caller.create_offer())
    try:
        await caller.accept_answer(answer)
        await asyncio.wait_for(caller.connected.wait(), 15)
        await asyncio.sleep(0.5)
        start = len(caller.received)
        chunk = tone(AGENT_HZ, 0.02)
        t0 = time.perf_counter()

        async def feed() -> None:
            while True:
                await media.play(_chunk(chunk))

        task = asyncio.create_task(feed())
        try:
            return await heard_after(caller, start, AGENT_HZ, t0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await caller.close()
        await media.close()


def _chunk(pcm: bytes) -> Any:
    from app.events import AudioChunk

    return AudioChunk(pcm, 16_000, 0)


def show(name: str, values: list[float]) -> None:
    ms = [v * 1000 for v in values]
    print(f"  {name:<28} n={len(ms):<3} p50 {percentile(ms, 50):7.1f} ms   "
          f"p95 {percentile(ms, 95):7.1f} ms   max {max(ms):7.1f} ms")


def start_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """``hotline serve`` in its own process (the clients' 16 peers load this one)."""
    env = {**os.environ, "HOTLINE_PORT": str(port), "HOTLINE_DATA_DIR": str(folder / "data"),
           "HOTLINE_FLOWS_DIR": str(short_flow(folder)),
           "HOTLINE_ROUTING_FILE": str(routing_file(folder)), "HOTLINE_ASR_MODELS": "{}",
           "HOTLINE_INTENT_TRAIN_ON_START": "false", "HF_HUB_OFFLINE": "1",
           "HOTLINE_AUTH_BOOTSTRAP_TOKEN": ADMIN_TOKEN, "HOTLINE_LOG_LEVEL": "WARNING",
           "HOTLINE_WEBRTC_OFFER_RATE": "100000/minute",
           "HOTLINE_AUTH_LOGIN_RATE": "1000/minute", "HOTLINE_QUEUE_POSITION_EVERY_S": "60"}
    log = (folder / "server.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env,
                            stdout=log, stderr=log)


async def main(rounds_1: int, rounds_many: int, many: int) -> None:
    AGENTS[:] = [f"agent{i}" for i in range(1, max(many, 1) + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(folder, port)
        agents = {a: DeskAgent(url, a) for a in AGENTS}
        try:
            await wait_ready(url, server)
            for agent in agents.values():
                await agent.login()
            async with httpx.AsyncClient(base_url=url) as client:
                health = []
                for _ in range(30):
                    t0 = time.perf_counter()
                    await client.get("/healthz")
                    health.append(time.perf_counter() - t0)
            bare = [await bare_first_audio_s(Settings()) for _ in range(5)]
            for calls, rounds in ((1, rounds_1), (many, rounds_many)):
                out: dict[str, list[float]] = {k: [] for k in (
                    "press_to_offer", "requested_to_offer", "server_answer_to_bridge",
                    "answer_to_caller_hears", "answer_to_agent_hears", "client_loop_lag",
                    "audio_not_heard", "failed_after_offer")}
                for _ in range(rounds):
                    probe = asyncio.create_task(loop_lag(out["client_loop_lag"]))
                    try:
                        await asyncio.gather(*(one_call(url, agents, out)
                                               for _ in range(calls)))
                    finally:
                        probe.cancel()
                        await asyncio.gather(probe, return_exceptions=True)
                print(f"\n{calls} call(s) at once, {rounds} round(s):")
                for name, values in out.items():
                    if name == "failed_after_offer":
                        print(f"  calls lost after the offer (answer/audio/hang-up failed): "
                              f"{len(values)} of {calls * rounds}")
                    elif name == "audio_not_heard":
                        print(f"  tone not heard within 30 s of the answer: {len(values)} "
                              f"of {calls * rounds} calls")
                    elif values:
                        show(name, values)
            print("\nbaselines (same run):")
            show("GET /healthz round trip", health)
            show("bare aiortc first audio", bare)
            print("\n(the server runs in its own process; the callers, agents and their 2 x N "
                  "aiortc peers share this one. 2-core box shared with other work: figures "
                  "are pessimistic)")
        finally:
            for agent in agents.values():
                await agent.close()
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds-1", type=int, default=10)
    parser.add_argument("--rounds-many", "--rounds-8", type=int, default=3)
    parser.add_argument("--many", type=int, default=8, help="calls at once (and agents)")
    args = parser.parse_args()
    asyncio.run(main(args.rounds_1, args.rounds_many, args.many))
