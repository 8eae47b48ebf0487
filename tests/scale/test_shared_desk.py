"""Issue 13 with real nodes: two ``hotline serve`` processes on one real PostgreSQL and one
real Redis (no Kamailio: the caller is a WebRTC peer). A caller waits on node A; the agent's
desk is connected to node B; the offer rung by A shows on B's desk, the agent answers
through B, the answer (with the desk's SDP) is forwarded to A, which makes the media leg:
the agent's audio goes to and from A (the only node with the caller's audio), each side
hears the other's tone; the desk's call actions at B (mute, hang up) are done on A; the
desk's own view and the monitor read on B show what A changed; the call's record is node
A's. And node A killed (-9) with the agent on one of its calls and a caller queued: node
B's sweep lets both go (the agent is available again on B's desk, the queue is empty) and a
new caller on B is offered to the agent. And Redis restarted empty while a caller waits on A:
A puts the caller back, and the agent at B answers them, then hands them back to the bot
(the hand-back checked and done on A)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from app.media.audio import Pcm
from app.sim.caller import CallerPeer
from tests.handoff.test_agent_call import hears
from tests.helpers.auth import ADMIN
from tests.helpers.desk import SILENCE, Caller, DeskAgent, play
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.helpers.tones import tone
from tests.pg import PgServer
from tests.scale.cluster import HOLD_FLOW, NUMBER, node_env
from tests.sip.conftest import SipServer, start_server, stop_server

pytestmark = pytest.mark.scale
CALLER_HZ, AGENT_HZ = 440.0, 1000.0

ROUTING = f"""\
version: 1
agents:
  ann: {{name: Ann, languages: [en], skills: {{general: 5}}}}
groups:
  g:
    strategy: sequential
    members: [ann]
    skills: [general]
    ring_timeout_s: 60
    max_wait_s: 300
    wrap_up_s: 0
    overflow_if_empty: false
hotlines:
  - number: "{NUMBER}"
    flow: hold
    default: {{group: g}}
    handback: {{busy: Goodbye}}
"""


def udp_ports_of(pid: int) -> set[int]:
    """The local UDP ports the process ``pid`` has open (``/proc``: its socket inodes
    matched in ``/proc/net/udp``/``udp6``)."""
    inodes: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def candidate_ports(sdp: str) -> set[int]:
    """The UDP ports of the host candidates in an SDP."""
    return {int(m) for m in re.findall(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host",
                                        sdp, flags=re.IGNORECASE)}


async def bus_subscribed(*nodes: SipServer, timeout_s: float = 60) -> None:
    """Until each node's routing bus hears the others (``/readyz`` ``cluster``)."""
    async with httpx.AsyncClient(timeout=10) as client, asyncio.timeout(timeout_s):
        for node in nodes:
            while True:
                body = (await client.get(f"{node.url}/readyz")).json()
                if body["cluster"]["routing_bus"] == "subscribed":
                    break
                await asyncio.sleep(0.1)


@pytest_asyncio.fixture
async def nodes(tmp_path: Path, pg_server: PgServer, redis_server: RedisServer  # noqa: F811
                ) -> AsyncIterator[dict[str, SipServer]]:
    """node-a and node-b: ``hotline serve`` on one database and one Redis, routing ``ann``
    (a desk agent) for the hold flow's number."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / HOLD_FLOW.name).write_text(HOLD_FLOW.read_text())
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    db_url = pg_server.create_database()
    started: dict[str, SipServer] = {}
    try:
        for name in ("node-a", "node-b"):  # one after the other: A migrates and seeds
            env = node_env(name, db_url, flows, HOTLINE_REDIS_URL=redis_server.url,
                           HOTLINE_ROUTING_FILE=str(routing), HOTLINE_LEADER_TTL_S="2")
            started[name] = await asyncio.to_thread(
                start_server, tmp_path / name, port=None, sip_port=None, **env)
        await bus_subscribed(*started.values())
        yield started
    finally:
        for node in started.values():
            await asyncio.to_thread(stop_server, node.proc)


async def answered(agent: DeskAgent, caller: Caller) -> CallerPeer:
    """The agent takes the caller's offer at the desk (answer with an SDP)."""
    _, offer = await agent.feed.wait(
        lambda m: m["type"] == "offer" and m["call_id"] == caller.call_id, 60)
    peer = CallerPeer(SILENCE)
    agent.peers.append(peer)
    body = await agent.post(f"/v1/desk/offers/{offer['offer_id']}/answer",
                            {"sdp": await peer.create_offer()})
    await peer.accept_answer(body["sdp"])
    await caller.event("agent_connected", agent_id="ann", device="web")
    return peer


async def test_caller_on_node_a_answered_at_a_desk_on_node_b_with_media_on_a(
        nodes: dict[str, SipServer]) -> None:
    a, b = nodes["node-a"], nodes["node-b"]
    agent = DeskAgent(b.url, "ann")
    caller = Caller(a.url)
    try:
        await agent.login()  # at B: available in the shared presence
        call_id = await caller.dial(NUMBER, locale="en")  # at A: transferred, queued
        _, offer = await agent.offer(timeout_s=60)  # rung by A, shown on B's desk
        assert offer["call_id"] == call_id and offer["group"] == "g"

        peer = CallerPeer(SILENCE)  # the desk's audio; its answer goes through B
        agent.peers.append(peer)
        body = await agent.post(f"/v1/desk/offers/{offer['offer_id']}/answer",
                                {"sdp": await peer.create_offer()})
        ports = candidate_ports(body["sdp"])  # the leg was made by A: its sockets
        assert ports and ports <= udp_ports_of(a.proc.pid), (ports, body["sdp"])
        assert not ports & udp_ports_of(b.proc.pid)
        await peer.accept_answer(body["sdp"])
        await asyncio.wait_for(peer.connected.wait(), 20)
        await caller.event("agent_connected", agent_id="ann", device="web")
        me = (await agent.client.get("/v1/desk/me")).json()  # B reads the state A changed
        assert (me["presence"]["state"], me["presence"]["calls"]) == ("on_call", [call_id])
        async with httpx.AsyncClient(base_url=b.url, timeout=30, headers=ADMIN) as client:
            wall = (await client.get("/v1/monitor")).json()
        assert [(r["agent_id"], r["state"]) for r in wall["agents"]] == [("ann", "on_call")]
        start_caller, start_agent = len(caller.peer.received), len(peer.received)
        play(caller.peer, Pcm(tone(CALLER_HZ, 8), 16_000))
        play(peer, Pcm(tone(AGENT_HZ, 8), 16_000))
        await hears(caller.peer, start_caller, AGENT_HZ, timeout_s=30)
        await hears(peer, start_agent, CALLER_HZ, timeout_s=30)

        # The desk's call actions at B are done by the call's Talk on A.
        assert await agent.action(call_id, "mute") == {"state": "talking", "muted": True}
        await caller.event("mute", agent_id="ann", on=True)
        await agent.action(call_id, "unmute")
        await agent.action(call_id, "hangup")
        await caller.event("call_ended", timeout_s=60, outcome="agent_handled")
        state = await agent.feed.wait(
            lambda m: m["type"] == "agent_state" and m.get("state") == "available"
            and m.get("previous") == "on_call", timeout_s=60)
        assert state[1]["agent_id"] == "ann"  # A's change shown on B's desk
        async with httpx.AsyncClient(base_url=b.url, timeout=30, headers=ADMIN) as client:
            items = (await client.get("/v1/calls", params={"limit": 50})).json()["items"]
        assert [c["node_id"] for c in items if c["id"] == call_id] == ["node-a"]
    finally:
        await caller.close()
        await agent.close()


async def test_node_a_killed_its_agent_and_queue_are_let_go_and_b_serves_new_callers(
        nodes: dict[str, SipServer]) -> None:
    a, b = nodes["node-a"], nodes["node-b"]
    agent = DeskAgent(b.url, "ann")
    talking, waiting, fresh = Caller(a.url), Caller(a.url), Caller(b.url)
    try:
        await agent.login()
        await talking.dial(NUMBER, locale="en")
        await answered(agent, talking)  # ann on a call held by A
        count = len(agent.feed.items)
        await waiting.dial(NUMBER, locale="en")  # ann is busy: this one waits (on A)
        await waiting.event("queue_joined", timeout_s=60)

        a.proc.kill()  # kill -9: nothing of A says goodbye
        await asyncio.to_thread(a.proc.wait, 30)
        _, state = await agent.feed.wait(  # B leads, sweeps A (stale after 5 s), lets go
            lambda m: m["type"] == "agent_state" and m.get("previous") == "on_call",
            timeout_s=60, after=count)
        assert state["state"] == "available"
        me = (await agent.client.get("/v1/desk/me")).json()
        assert (me["presence"]["state"], me["presence"]["calls"]) == ("available", [])

        await fresh.dial(NUMBER, locale="en")  # a new caller, on the survivor
        await answered(agent, fresh)  # offered to ann at once: A's waiting caller is gone
        async with httpx.AsyncClient(base_url=b.url, timeout=30, headers=ADMIN) as client:
            items = (await client.get("/v1/calls", params={"limit": 50})).json()["items"]
        outcomes = {c["id"]: c["outcome"] for c in items}
        assert outcomes[talking.call_id] == outcomes[waiting.call_id] == "interrupted"
    finally:
        for caller in (talking, waiting, fresh):
            await caller.close()
        await agent.close()


async def test_redis_restarted_empty_a_waiting_caller_is_still_served(
        nodes: dict[str, SipServer], redis_server: RedisServer) -> None:  # noqa: F811
    a, b = nodes["node-a"], nodes["node-b"]
    agent = DeskAgent(b.url, "ann")
    caller = Caller(a.url)
    try:
        await agent.login(status=None)  # signed in at B, not taking calls yet
        await agent.post("/v1/desk/status", {"status": "away", "reason": "break"})
        await caller.dial(NUMBER, locale="en")
        await caller.event("queue_joined", timeout_s=60)  # waiting on A
        redis_server.stop()
        redis_server.start()  # empty: the presence and the queue are gone from Redis
        await bus_subscribed(a, b)
        await agent.post("/v1/desk/status", {"status": "available"})
        peer = await answered(agent, caller)  # A put its caller back: offered, answered
        start_caller, start_agent = len(caller.peer.received), len(peer.received)
        play(caller.peer, Pcm(tone(CALLER_HZ, 8), 16_000))
        play(peer, Pcm(tone(AGENT_HZ, 8), 16_000))
        await hears(caller.peer, start_caller, AGENT_HZ, timeout_s=30)
        await hears(peer, start_agent, CALLER_HZ, timeout_s=30)

        # A hand-back at B is checked and done by the call's Talk on A.
        refused = await agent.action(caller.call_id, "handback", {"node": "agent"},
                                     expect=400)
        assert "busy" in refused["detail"]  # A's answer: the hotline's hand-back nodes
        await agent.action(caller.call_id, "handback", {"node": "busy"})
        await caller.event("agent_disconnected", agent_id="ann", reason="handback")
        await caller.event("call_ended", timeout_s=60)  # the bot's goodbye, on A
    finally:
        await caller.close()
        await agent.close()
