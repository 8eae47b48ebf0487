"""Callback tasks outlive their node: a caller who asked to be called back is a task in the
routing state plus a ``CallbackLink`` in the memory of the node that took the call. Node A
lost (two nodes on one real Redis and one real database, SQLite and PostgreSQL): until
someone adopts the task, an agent is reserved for it and no node rings; the leader's sweep
(on B) hands A's queued callbacks to B, B rings the reserved offer, the agent answers at B's
desk and B dials the caller. One node restarted (``LocalState``): its queued callbacks are
queued again with the caller's original join time and served; one too old ends expired.

The outbound leg is the one stand-in: ``Phones.dial_number`` answers at once with a leg that
carries no audio (the real dial through a SIP trunk is ``tests/handoff/test_callback.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.call.bus import EventBus
from app.cluster.liveness import NodeLiveness
from app.events import utc_now
from app.handoff.desk import DeskHub
from app.handoff.live import CallLink, Connected, LiveRouting, NoAudio
from app.handoff.packet import HandoffPacket
from app.handoff.phones import Phones
from app.handoff.routing_bus import RoutingBus, SharedDeskHub
from app.handoff.service import HandoffService
from app.record import HandoffRequested, TranscriptTurn, event_payload
from app.routing.service import RoutingService
from app.routing.shared import RedisState
from app.settings import Settings
from app.storage import CallRepository, Database
from app.storage.handoff_repo import HandoffRepository
from tests.cluster.test_shared_live import _next
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.helpers.routing import NUMBER, compiled, config, request

MOBILE = "+8613912345678"


class DialStandIn(Phones):
    """The outbound leg: every number answers at once (recorded)."""

    def __init__(self) -> None:
        super().__init__(lambda: None)
        self.dialled: list[tuple[str, str, str]] = []  # (call_id, number, caller id)

    async def dial_number(self, call_id: str, number: str, caller_id: str,
                          ring_timeout_s: float | None = None,
                          cancel: asyncio.Event | None = None) -> Any:
        self.dialled.append((call_id, number, caller_id))
        return Connected(f"number:{number}", number, NoAudio())


class Node:
    """One node's handoff side: live routing (shared over Redis, or in process), desks, the
    callbacks' late log, on the shared database."""

    def __init__(self, db: Database, name: str, url: str | None,
                 expire_s: float = 86_400) -> None:
        cfg = config({"ann": {"name": "Ann", "languages": ["zh"], "skills": {"general": 1},
                              "devices": [{"kind": "web"}]}},
                     {"g": {"strategy": "sequential", "members": ["ann"], "max_wait_s": 600,
                            "ring_timeout_s": 60, "overflow_if_empty": False,
                            "callback_expire_after_s": expire_s}},
                     [{"name": "all", "target": {"group": "g"}}])
        self.name = name
        self.bus = RoutingBus(url, name) if url else None
        service = RoutingService(compiled(cfg))
        self.state = RedisState(service, url, name) if url else None
        desk = SharedDeskHub(self.bus) if self.bus else DeskHub()
        self.live = LiveRouting(service, desk, accept_web=self._accept,
                                state=self.state, bus=self.bus)
        self.phones = DialStandIn()
        self.handoff = HandoffService(self.live, HandoffRepository(db), EventBus(), None,
                                      self.phones, node_id=name)
        self.closed = False

    async def _accept(self, sdp: str) -> tuple[Any, str]:
        return NoAudio(), f"answer from {self.name}"

    async def start(self) -> None:
        if self.bus is not None:
            await self.bus.start()
            await self.bus.ready()
        self.live.start()

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await self.handoff.aclose()


@asynccontextmanager
async def nodes(db: Database, url: str | None, *names: str, **kw: Any
                ) -> AsyncIterator[list[Node]]:
    made = [Node(db, name, url, **kw) for name in names]
    async with AsyncExitStack() as stack:
        for node in made:
            await node.start()
            stack.push_async_callback(node.aclose)
        yield made


def _call_asked_for_callback(repo: CallRepository, node: Node, call_id: str,
                             joined_at: datetime) -> CallLink:
    """What a call does on ``node`` (``CallHandoff.close``): its record says the handoff,
    then ``callback_queued``; it ends ``callback_requested``. Returns its routing link."""
    started = joined_at - timedelta(seconds=30)
    repo.start_call(call_id, NUMBER, MOBILE, "sip", "zh", started, "demo", node_id=node.name)
    handoff = HandoffRequested(queue="general", reason="caller asked", intent="billing",
                               transcript=[TranscriptTurn(speaker="caller", text="我的账单")])
    packet = HandoffPacket(call_id=call_id, hotline_number=NUMBER, caller_number=MOBILE,
                           caller_region="江苏", locale="zh", queue="general",
                           reason="caller asked", intent="billing")
    link = CallLink(call_id, request(call_id=call_id, caller_number=MOBILE,
                                     slots={"account": "A-17"}), packet, lambda e: None)
    queued = node.handoff.callback_queued(link, MOBILE, "g", joined_at)
    for i, event in enumerate((event_payload(handoff), event_payload(queued)), 1):
        repo.append_event(call_id, event, started + timedelta(seconds=i))
    repo.end_call(call_id, "callback_requested", joined_at + timedelta(seconds=5))
    return link


async def _until(what: str, condition: Callable[[], bool], timeout_s: float = 20) -> None:
    """Poll the database (the late log writes in a thread: nothing to wait on)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def _served_at(node: Node, desk: asyncio.Queue[dict[str, Any]], call_id: str,
                     repo: CallRepository) -> None:
    """The offer rings ann's desk on ``node``; she answers, the caller is dialled from
    ``node``, she hangs up; the record says the callback is done."""
    offer = await _next(desk, "offer")
    assert offer["call_id"] == call_id and offer["packet"]["callback"] is True
    assert offer["offer_id"] in node.live.ringing
    await node.live.answer_web("ann", offer["offer_id"], "desk sdp")
    assert (await _next(desk, "callback_dialing"))["number"] == MOBILE
    await _next(desk, "callback_connected")
    assert node.phones.dialled == [(call_id, MOBILE, NUMBER)]
    await node.live.control("ann", call_id, "hangup", {})
    assert (await _next(desk, "callback_result"))["outcome"] == "answered"
    await _until("the callback is done", lambda: _cdr(repo, call_id).callback_status == "done")


def _cdr(repo: CallRepository, call_id: str) -> Any:
    detail = repo.get_call(call_id)
    assert detail is not None
    return detail.cdr


def _events(repo: CallRepository, call_id: str, kind: str) -> list[dict[str, Any]]:
    detail = repo.get_call(call_id)
    assert detail is not None
    return [e.payload for e in detail.events if e.type == kind]


async def test_a_lost_nodes_callback_is_adopted_by_the_leader_and_the_caller_called_back(
        db: Database, redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    repo = CallRepository(db)
    joined_at = utc_now() - timedelta(minutes=3)
    async with nodes(db, redis_server.url, "node-a", "node-b") as (a, b), \
            b.live.desk.connect("ann") as desk:
        link = _call_asked_for_callback(repo, a, "c1", joined_at)
        await a.handoff.queue_callback(link, MOBILE, joined_at)  # ann is offline: it waits
        assert a.live.entry("c1") is not None and "c1" in a.live.links
        await a.aclose()  # node A is gone (kill -9: its routing closed, nothing cleaned up)

        # The defect, while nobody adopted the task: ann is reserved for it, no node rings.
        await b.live.set_status("ann", "available", None)
        await b.live.refresh()
        (phantom,) = b.live.service.offers.pending()
        assert (phantom.call_id, phantom.agent_id) == ("c1", "ann")
        assert b.live.state_of("ann")["state"] == "ringing" and not b.live.ringing
        seen = [desk.get_nowait()["type"] for _ in range(desk.qsize())]
        assert "offer" not in seen

        now = utc_now()  # A's heartbeat is stale; B leads and sweeps
        repo.heartbeat("node-a", now - timedelta(seconds=60))
        settings = Settings(data_dir=tmp_path, node_id="node-b", node_heartbeat_s=1,
                            node_stale_after_s=15)
        liveness = NodeLiveness(repo, settings)
        liveness.on_lost = b.handoff.nodes_lost
        assert await liveness.tick() == {"node-a": []}  # no call in flight: only the task

        assert _events(repo, "c1", "callback_adopted") == [
            {"from_node": "node-a", "by_node": "node-b"}]
        assert _cdr(repo, "c1").node_id == "node-b"
        entry = b.live.entry("c1")
        assert entry is not None and entry.joined_at == joined_at  # the caller's place
        assert [o.id for o in b.live.service.offers.pending()] == [phantom.id]
        assert list(b.live.ringing) == [phantom.id]  # the reserved offer rings now, from B
        await _served_at(b, desk, "c1", repo)
        assert b.live.entry("c1") is None and not b.live.service.offers.pending()
        (done,) = _events(repo, "c1", "callback_done")
        assert (done["agent_id"], done["outcome"]) == ("ann", "answered")
        assert await liveness.tick() == {} and b.handoff.adopted == {"c1"}  # adopted once


async def test_a_restarted_node_serves_its_queued_callbacks_keeping_the_callers_place(
        db: Database) -> None:
    repo = CallRepository(db)
    joined_at = utc_now() - timedelta(minutes=10)
    async with nodes(db, None, "node-1", expire_s=3_600) as (first,):
        link = _call_asked_for_callback(repo, first, "c1", joined_at)
        await first.handoff.queue_callback(link, MOBILE, joined_at)
        assert first.live.entry("c1") is not None
    # a task from two hours ago, its node crashed back then: past the group's expiry
    _call_asked_for_callback(repo, first, "c-old", joined_at - timedelta(hours=2))
    assert _cdr(repo, "c1").callback_status == "queued"

    async with nodes(db, None, "node-1", expire_s=3_600) as (node,), \
            node.live.desk.connect("ann") as desk:
        assert node.live.entry("c1") is None  # the routing state is gone with the process
        assert sorted(await node.handoff.adopt_callbacks()) == ["c-old", "c1"]
        entry = node.live.entry("c1")
        assert entry is not None and entry.callback and entry.callback_number == MOBILE
        assert entry.joined_at == joined_at and entry.request.slots == {"account": "A-17"}
        assert node.live.entry("c-old") is None
        await _until("the old task ended",
                     lambda: _cdr(repo, "c-old").callback_status == "failed")
        assert [e["outcome"] for e in _events(repo, "c-old", "callback_done")] == ["expired"]
        assert await node.handoff.adopt_callbacks() == []  # once

        await node.live.set_status("ann", "available", None)
        await _served_at(node, desk, "c1", repo)
    assert _cdr(repo, "c1").callback_done_at is not None
    assert _events(repo, "c1", "callback_adopted") == []  # its own node served it


def test_the_sweep_hands_only_queued_callbacks_to_the_survivor(db: Database) -> None:
    repo = CallRepository(db)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    repo.heartbeat("node-a", now - timedelta(seconds=60))
    for call_id, status in (("queued", "queued"), ("done", "done"), ("none", None)):
        repo.start_call(call_id, NUMBER, MOBILE, "sip", "zh", now - timedelta(minutes=5),
                        "demo", node_id="node-a")
        if status is not None:
            repo.append_event(call_id, {"type": "callback_queued", "number": MOBILE},
                              now - timedelta(minutes=4))
        if status == "done":
            repo.append_event(call_id, {"type": "callback_done", "agent_id": "ann",
                                        "number": MOBILE, "outcome": "answered"},
                              now - timedelta(minutes=3))
        repo.end_call(call_id, "callback_requested", now - timedelta(minutes=2))
    assert repo.finalize_lost_nodes(now, survivor="node-b", stale_after_s=15) == {
        "node-a": []}
    assert {c: _cdr(repo, c).node_id for c in ("queued", "done", "none")} == {
        "queued": "node-b", "done": "node-a", "none": "node-a"}
    assert [q.call_id for q in HandoffRepository(db).queued_callbacks("node-b")] == ["queued"]
    assert HandoffRepository(db).queued_callbacks("node-a") == []
