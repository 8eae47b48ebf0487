"""Two nodes' live routings over one real Redis (in one process: the node boundary is Redis
alone, each node with its own RedisState, RoutingBus and desks): a caller queued on node A is
offered to an agent whose desk is connected to node B; B's desk answers through B and the
media leg is created on node A (its ``accept_web``); a decline through B reaches A too; agents'
state changes show on their desk wherever it is. Redis down at an enqueue: the caller takes
the no-agent path, and routing works again once Redis is back; a lost node's calls are let
go (the leader's sweep); Redis restarted empty: the nodes put back what they hold; a desk
action from a node that never saw the call's offer finds the call's node in the records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY

from app.events import utc_now
from app.handoff.live import CallLink, Connected, DeskError, Exited, LiveRouting, NoAudio
from app.handoff.packet import HandoffPacket
from app.handoff.routing_bus import RoutingBus, SharedDeskHub
from app.record import CallError
from app.routing.service import RoutingService
from app.routing.shared import RedisState
from app.storage import CallRepository
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.helpers.routing import NUMBER, SHANGHAI_FIXED, compiled, config, request


class Node:
    def __init__(self, url: str, name: str) -> None:
        cfg = config({"ann": {"name": "Ann", "languages": ["zh"], "skills": {"general": 1},
                              "devices": [{"kind": "web"}]}},
                     {"g": {"strategy": "sequential", "members": ["ann"], "max_wait_s": 600,
                            "ring_timeout_s": 60, "overflow_if_empty": False}},
                     [{"name": "all", "target": {"group": "g"}}])
        self.name = name
        self.legs: list[tuple[str, NoAudio]] = []  # (the desk's SDP, the leg made here)
        self.closed = False
        self.bus = RoutingBus(url, name)
        service = RoutingService(compiled(cfg))
        self.state = RedisState(service, url, name)
        self.live = LiveRouting(service, SharedDeskHub(self.bus), accept_web=self._accept,
                                state=self.state, bus=self.bus)

    async def _accept(self, sdp: str) -> tuple[Any, str]:
        leg = NoAudio()
        self.legs.append((sdp, leg))
        return leg, f"answer from {self.name}"

    async def start(self) -> None:
        await self.bus.start()
        await self.bus.ready()
        self.live.start()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.live.aclose()
        await self.bus.aclose()
        await self.state.aclose()


@asynccontextmanager
async def two_nodes(url: str) -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node(url, "node-a"), Node(url, "node-b")
    async with AsyncExitStack() as stack:
        for node in (a, b):
            await node.start()
            stack.push_async_callback(node.aclose)
        yield a, b


def _link(call_id: str, recorded: list[Any] | None = None) -> CallLink:
    packet = HandoffPacket(call_id=call_id, hotline_number=NUMBER, caller_number=SHANGHAI_FIXED,
                           caller_region="上海", locale="zh", queue="general", reason="test")
    return CallLink(call_id, request(call_id=call_id), packet,
                    recorded.append if recorded is not None else lambda e: None)


async def _next(queue: asyncio.Queue[dict[str, Any]], kind: str, timeout_s: float = 20
                ) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            message = await queue.get()
            if message.get("type") == kind:
                return message


async def test_a_caller_on_node_a_is_answered_at_a_desk_on_node_b_with_media_on_a(
        redis_server: RedisServer) -> None:  # noqa: F811
    async with two_nodes(redis_server.url) as (a, b), b.live.desk.connect("ann") as desk:
        await b.live.set_status("ann", "available", None)  # signs in at B
        assert (await _next(desk, "agent_state"))["state"] == "available"
        link = _link("c1")
        ticket = await a.live.enqueue(link)  # the caller waits on A
        assert ticket.status == "queued"
        offer = await _next(desk, "offer")  # rung by A (it has the call), shown on B
        assert offer["call_id"] == "c1" and offer["packet"]["caller_region"] == "上海"
        assert offer["offer_id"] in a.live.ringing and not b.live.ringing
        answer = await b.live.answer_web("ann", offer["offer_id"], "desk sdp")
        assert answer == "answer from node-a"  # A made the leg: media goes desk <-> A
        assert [sdp for sdp, _ in a.legs] == ["desk sdp"] and b.legs == []
        async with asyncio.timeout(20):
            decision = await link.decisions.get()
        assert isinstance(decision, Connected) and decision.agent_id == "ann"
        assert decision.leg is a.legs[0][1]
        ended = await _next(desk, "offer_ended")
        assert (ended["state"], ended["answered_by"]) == ("accepted", "web")
        presence = await b.state.run(lambda s: s.presence.get("ann"))
        assert presence is not None and presence.calls == ("c1",)
        await a.live.call_ended("ann", "c1", 30.0, "g")
        assert (await _next(desk, "agent_state"))["state"] in ("available", "wrap_up")


async def test_a_decline_at_node_b_reaches_the_offer_on_node_a(
        redis_server: RedisServer) -> None:  # noqa: F811
    async with two_nodes(redis_server.url) as (a, b), b.live.desk.connect("ann") as desk:
        await b.live.set_status("ann", "available", None)
        await a.live.enqueue(_link("c2"))
        offer = await _next(desk, "offer")
        await b.live.decline("ann", offer["offer_id"])
        ended = await _next(desk, "offer_ended")
        assert (ended["offer_id"], ended["state"]) == (offer["offer_id"], "rejected")
        with pytest.raises(DeskError) as refused:  # answering it now: A says it ended
            await b.live.answer_web("ann", offer["offer_id"], "late sdp")
        assert refused.value.status == 409 and "not ringing" in refused.value.detail
        assert a.legs == []


class _Talk:
    """The call's talk on its node (what a desk's actions reach): it records them."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []

    def agents(self) -> set[str]:
        return {"ann"}

    async def control(self, agent_id: str, action: str, body: dict[str, Any]
                      ) -> dict[str, Any]:
        self.done.append((agent_id, action))
        return {"state": "talking", "muted": action == "mute"}


async def test_a_desk_that_never_saw_the_offer_reaches_the_call_through_the_records(
        redis_server: RedisServer, repo: CallRepository) -> None:  # noqa: F811
    """A desk reloaded on a node that never carried the call's offer: the call records
    name the node holding the call (``CallRepository.live_node``), the action goes there."""
    async with two_nodes(redis_server.url) as (a, b):
        talk = _Talk()
        a.live.talks["c9"] = talk  # ann talks to c9 on A; B never saw its offer
        with pytest.raises(DeskError) as unknown:  # nothing to go by: not here
            await b.live.control("ann", "c9", "mute", {})
        assert unknown.value.status == 409
        repo.start_call("c9", NUMBER, SHANGHAI_FIXED, "sip", "zh", utc_now(), "demo",
                        node_id="node-a")
        assert b.live.remote is not None

        async def locate(call_id: str) -> str | None:
            return await asyncio.to_thread(repo.live_node, call_id)

        b.live.remote.locate = locate
        assert await b.live.control("ann", "c9", "mute", {}) == {"state": "talking",
                                                                 "muted": True}
        assert talk.done == [("ann", "mute")]  # done on A
        repo.end_call("c9", "agent_handled", utc_now())
        with pytest.raises(DeskError) as ended:  # the records say it is over
            await b.live.control("ann", "c9", "unmute", {})
        assert ended.value.status == 409 and talk.done == [("ann", "mute")]
        a.live.talks.pop("c9")


def _failures(op: str) -> float:
    return REGISTRY.get_sample_value("hotline_routing_state_failures_total", {"op": op}) or 0.0


async def _until(what: str, condition: Callable[[], bool], timeout_s: float = 30) -> None:
    """Poll ``condition`` (nothing to wait on: a bus notices Redis gone at its next read)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_redis_down_at_enqueue_takes_the_no_agent_path_and_routing_comes_back(
        redis_server: RedisServer) -> None:  # noqa: F811
    async with two_nodes(redis_server.url) as (a, b), b.live.desk.connect("ann") as desk:
        await b.live.set_status("ann", "available", None)
        before = _failures("enqueue")
        redis_server.stop()
        await _until("both buses see Redis gone",
                     lambda: not a.bus.subscribed and not b.bus.subscribed)
        recorded: list[Any] = []
        link = _link("c3", recorded)
        ticket = await a.live.enqueue(link)  # no exception: the call leaves routing
        assert (ticket.status, ticket.action) == ("exit", "no_route")
        decision = link.decisions.get_nowait()
        assert isinstance(decision, Exited) and decision.action == "no_route"
        assert decision.reason == "routing state unreachable"
        assert _failures("enqueue") == before + 1
        assert [(e.reason, e.where) for e in recorded if isinstance(e, CallError)] == [
            ("routing_state_unreachable", "routing")]
        await a.live.forget("c3")  # the flow goes on: leaving is logged, never raised
        with pytest.raises(DeskError) as refused:
            await b.live.set_status("ann", "away", "break")
        assert refused.value.status == 503 and "unreachable" in refused.value.detail

        redis_server.start()  # back, empty: the agent signs in again and calls route again
        await a.bus.ready(30)
        await b.bus.ready(30)
        await b.live.set_status("ann", "available", None)
        link = _link("c4")
        assert (await a.live.enqueue(link)).status == "queued"
        offer = await _next(desk, "offer", timeout_s=30)
        assert offer["call_id"] == "c4"
        await b.live.answer_web("ann", offer["offer_id"], "desk sdp")
        async with asyncio.timeout(20):
            connected = await link.decisions.get()
        assert isinstance(connected, Connected) and [s for s, _ in a.legs] == ["desk sdp"]


async def test_a_lost_nodes_calls_are_let_go_its_agents_freed_and_new_calls_served(
        redis_server: RedisServer) -> None:  # noqa: F811
    async with two_nodes(redis_server.url) as (a, b), b.live.desk.connect("ann") as desk:
        await b.live.set_status("ann", "available", None)
        talking = _link("c1")
        await a.live.enqueue(talking)
        offer = await _next(desk, "offer")
        await b.live.answer_web("ann", offer["offer_id"], "desk sdp")
        await a.live.enqueue(_link("c2"))  # ann is busy (one call at a time): c2 waits
        assert (await _next(desk, "agent_state"))["state"] == "on_call"
        await a.aclose()  # node A is gone (nothing left routing on its side)

        await b.live.release_lost({"node-a": ["c1", "c2"]})  # the leader's sweep, on B
        state = await _next(desk, "agent_state")
        assert (state["previous"], state["state"]) == ("on_call", "available")
        await b.live.refresh()
        assert b.live.presence("ann").calls == ()
        assert b.live.entry("c2") is None and not b.live.service.queues.waiting()
        link = _link("c3")  # a new call on the survivor goes to ann at once
        assert (await b.live.enqueue(link)).status == "queued"
        assert (await _next(desk, "offer"))["call_id"] == "c3"


async def test_redis_restarted_empty_the_nodes_rebuild_presence_and_queue_and_calls_go_on(
        redis_server: RedisServer) -> None:  # noqa: F811
    async with two_nodes(redis_server.url) as (a, b), b.live.desk.connect("ann") as desk:
        await b.live.set_status("ann", "available", None)
        await a.live.enqueue(_link("c1"))
        offer = await _next(desk, "offer")
        await b.live.answer_web("ann", offer["offer_id"], "desk sdp")  # ann talks to c1 (A)
        await a.live.enqueue(_link("c2"))  # and c2 waits on A
        redis_server.stop()
        await _until("both buses see Redis gone",
                     lambda: not a.bus.subscribed and not b.bus.subscribed)
        redis_server.start()  # empty: presence and queue are gone
        await a.bus.ready(30)
        await b.bus.ready(30)

        async with asyncio.timeout(30):  # each node's next transaction sees the reset
            while True:
                await b.live.refresh()
                if b.live.presence("ann").calls == ("c1",) and b.live.entry("c2"):
                    break
                await asyncio.sleep(0.1)
        assert (a.state.figures.resets, b.state.figures.resets) == (1, 1)
        assert b.live.state_of("ann")["state"] == "on_call"
        await a.live.call_ended("ann", "c1", 30.0, "g")  # c1 ends: c2 is offered to ann
        assert (await _next(desk, "offer", timeout_s=30))["call_id"] == "c2"
