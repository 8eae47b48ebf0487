"""A supervisor on a real call with an agent (aiortc caller, aiortc agent at the desk, an aiortc
supervisor at ``/v1/calls/{id}/supervise``), each side playing its own tone: in listen mode
the supervisor hears the caller and the agent and nobody hears the supervisor; whispering,
the agent hears the supervisor and the caller does not; barging, both do. The record and the
audit log say who supervised which call, in which modes, from when to when; an agent is
refused; a second supervisor is refused while one is on."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app.auth import Role
from app.media.audio import Pcm, read_wav
from app.sim.caller import CallerPeer
from tests.handoff.conftest import DEMO, SHANGHAI_CALLER, Desk
from tests.handoff.routing import actions_flow, actions_routing, phone_agent_routing, short_flow
from tests.handoff.test_agent_actions import CALLER_HZ, LI_NA_HZ, connected_call
from tests.handoff.test_routing_paths import ask_for_agent
from tests.helpers.auth import ADMIN, create_user, sign_in
from tests.helpers.desk import SILENCE, play
from tests.helpers.tones import tone
from tests.helpers.tools import needs
from tests.sip.conftest import free_udp_port
from tests.sip.test_outbound import _baresip, _baresip_config

SUPERVISOR_HZ = 1250.0
PHONE_HZ = 1000.0  # what the agent's SIP phone plays
SECOND = 32_000  # bytes of 16 kHz s16le


def tone_share(pcm: bytes, hz: float, rate_hz: int = 16_000) -> float:
    """The share of ``pcm``'s energy within 25 Hz of ``hz`` (a tone in a mix of others)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    power = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate_hz)
    total = float(power.sum())
    return float(power[np.abs(freqs - hz) < 25].sum()) / total if total else 0.0


async def next_second(peer: CallerPeer, timeout_s: float = 20) -> bytes:
    """The next whole second ``peer`` hears (from now)."""
    start = len(peer.received)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(peer.received) < start + SECOND:
        assert loop.time() < deadline, "no audio arrived"
        await asyncio.sleep(0.05)
    return bytes(peer.received[start:start + SECOND])


async def until_heard(peer: CallerPeer, *tones_hz: float, timeout_s: float = 20,
                      min_share: float = 0.1) -> bytes:
    """Seconds ``peer`` hears until one carries every tone of ``tones_hz`` (each at least
    ``min_share`` of the energy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    shares: list[float] = []
    while loop.time() < deadline:
        second = await next_second(peer)
        shares = [tone_share(second, hz) for hz in tones_hz]
        if min(shares) >= min_share:
            return second
    raise AssertionError(f"did not hear {tones_hz} (shares {shares})")


class Supervisor:
    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.client = httpx.AsyncClient(base_url=url, timeout=30)
        self.csrf = ""
        self.peer = CallerPeer(SILENCE)

    async def login(self, role: Role = Role.SUPERVISOR) -> None:
        await create_user(self.client, self.url, self.name, role)
        cookies, self.csrf = await sign_in(self.client, self.url, self.name)
        self.client.cookies.update(cookies)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf})

    async def join(self, call_id: str, mode: str) -> dict[str, Any]:
        response = await self.post(f"/v1/calls/{call_id}/supervise",
                                   {"mode": mode, "sdp": await self.peer.create_offer()})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        await self.peer.accept_answer(body["sdp"])
        await asyncio.wait_for(self.peer.connected.wait(), 20)
        return body

    async def mode(self, call_id: str, mode: str) -> None:
        response = await self.post(f"/v1/calls/{call_id}/supervise/mode", {"mode": mode})
        assert response.status_code == 200 and response.json()["mode"] == mode, response.text

    async def close(self) -> None:
        await self.peer.close()
        await self.client.aclose()


async def test_listen_whisper_barge_on_a_real_call(make_desk: Any, tmp_path: Path) -> None:
    desk: Desk = await make_desk(actions_routing(tmp_path), flows_dir=actions_flow(tmp_path))
    agent = desk.agent("li.na")
    caller, call_id, agent_peer = await connected_call(desk, agent)
    boss = Supervisor(desk.url, "wang.boss")
    desk.opened.append(boss)
    await boss.login()

    refused = await agent.client.post(f"/v1/calls/{call_id}/supervise", json={
        "mode": "listen", "sdp": "v=0"}, headers={"X-CSRF-Token": agent.csrf})
    assert refused.status_code == 403, refused.text  # an agent cannot listen in

    play(boss.peer, Pcm(tone(SUPERVISOR_HZ, 90), 16_000))
    joined = await boss.join(call_id, "listen")
    assert joined["mode"] == "listen" and joined["agent_id"] == "li.na"
    await until_heard(boss.peer, CALLER_HZ, LI_NA_HZ)  # both sides, mixed
    assert tone_share(await next_second(caller.peer), SUPERVISOR_HZ) < 0.01
    assert tone_share(await next_second(agent_peer), SUPERVISOR_HZ) < 0.01

    async with httpx.AsyncClient(base_url=desk.url, headers=ADMIN, timeout=30) as admin:
        busy = await admin.post(f"/v1/calls/{call_id}/supervise",
                                json={"mode": "listen", "sdp": "v=0"})
        wall = (await admin.get("/v1/monitor")).json()
    assert busy.status_code == 409 and "wang.boss" in busy.json()["detail"]  # one at a time
    row = next(c for c in wall["calls"] if c["call_id"] == call_id)
    assert (row["agent"], row["supervisor"], row["supervise_mode"]) == (
        "li.na", "wang.boss", "listen")

    await boss.mode(call_id, "whisper")
    await until_heard(agent_peer, CALLER_HZ, SUPERVISOR_HZ)  # the agent hears both
    for _ in range(2):  # the caller still hears the agent, never the supervisor
        second = await next_second(caller.peer)
        assert tone_share(second, SUPERVISOR_HZ) < 0.01 and tone_share(second, LI_NA_HZ) > 0.3

    await boss.mode(call_id, "barge")
    await until_heard(caller.peer, LI_NA_HZ, SUPERVISOR_HZ)  # now the caller does
    await until_heard(agent_peer, CALLER_HZ, SUPERVISOR_HZ)
    await until_heard(boss.peer, CALLER_HZ, LI_NA_HZ)

    left = await boss.post(f"/v1/calls/{call_id}/supervise/leave")
    assert left.status_code == 200 and left.json()["mode"] == "barge", left.text
    _, gone = await caller.event("supervisor_left")
    assert gone["supervisor"] == "wang.boss" and gone["reason"] == "left"
    assert gone["supervised_s"] > 0
    await agent.action(call_id, "hangup")
    await caller.event("call_ended", outcome="agent_handled")

    sup_events = [(e["type"], e.get("mode")) for _, e in caller.events.items
                  if str(e.get("type", "")).startswith("supervisor_")]
    assert sup_events == [("supervisor_joined", "listen"), ("supervisor_mode", "whisper"),
                          ("supervisor_mode", "barge"), ("supervisor_left", "barge")]
    async with httpx.AsyncClient(base_url=desk.url, headers=ADMIN, timeout=30) as admin:
        stored = (await admin.get(f"/v1/calls/{call_id}")).json()
        audit = (await admin.get("/v1/audit", params={"target": f"call:{call_id}"})).json()
    kinds = [e["type"] for e in stored["events"]]
    assert kinds.count("supervisor_joined") == 1 and kinds.count("supervisor_left") == 1
    trail = [(a["actor"], a["action"], (a["after"] or {}).get("mode"))
             for a in reversed(audit["items"]) if a["action"].startswith("call.supervise")]
    assert trail == [("wang.boss", "call.supervise.start", "listen"),
                     ("wang.boss", "call.supervise.mode", "whisper"),
                     ("wang.boss", "call.supervise.mode", "barge"),
                     ("wang.boss", "call.supervise.end", "barge")]


@needs(shutil.which("baresip") is not None, "baresip")
async def test_whisper_to_a_phone_agent(make_desk: Any, tmp_path: Path) -> None:
    """The agent's leg is a SIP phone (baresip, 8 kHz G.711): the whisper is mixed at the
    phone leg's rate; the phone decodes it, the caller never hears it; the talk's end ends
    the supervision."""
    port = free_udp_port()
    uri = f"sip:agent@127.0.0.1:{port}"
    home = _baresip_config(tmp_path, port, PHONE_HZ)
    async with _baresip(home):
        desk = await make_desk(phone_agent_routing(tmp_path, uri),
                               flows_dir=short_flow(tmp_path), sip_enabled=True, sip_port=0)
        agent = desk.agent("wang.fang")
        await agent.login()
        caller = desk.caller()
        call_id = await caller.dial(DEMO, caller_number=SHANGHAI_CALLER)
        play(caller.peer, Pcm(tone(CALLER_HZ, 60), 16_000))
        await ask_for_agent(caller)
        await caller.event("agent_connected", agent_id="wang.fang")
        boss = Supervisor(desk.url, "wang.boss")
        desk.opened.append(boss)
        await boss.login()
        play(boss.peer, Pcm(tone(SUPERVISOR_HZ, 60), 16_000))
        await boss.join(call_id, "whisper")
        await until_heard(boss.peer, CALLER_HZ, PHONE_HZ)
        for _ in range(2):
            second = await next_second(caller.peer)
            assert tone_share(second, SUPERVISOR_HZ) < 0.01 and tone_share(second, PHONE_HZ) > 0.3
        await caller.close()
        cdr = await desk.cdr(call_id, lambda c: bool(c.get("ended_at")))
        async with httpx.AsyncClient(base_url=desk.url, headers=ADMIN, timeout=30) as admin:
            stored = (await admin.get(f"/v1/calls/{call_id}")).json()
    assert cdr["answered_by"] == "wang.fang"
    left = [e["payload"] for e in stored["events"] if e["type"] == "supervisor_left"]
    assert [(e["supervisor"], e["mode"], e["reason"]) for e in left] == [
        ("wang.boss", "whisper", "talk_ended")]
    (dump,) = home.glob("dump-*-dec.wav")  # what the phone decoded: caller + whisper
    heard = read_wav(dump)
    tail = heard.data[-heard.sample_rate_hz * 2 * 2:]
    assert tone_share(tail, CALLER_HZ, heard.sample_rate_hz) > 0.1
    assert tone_share(tail, SUPERVISOR_HZ, heard.sample_rate_hz) > 0.1
