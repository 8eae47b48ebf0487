"""The routing state shared by several nodes in a real Redis (``app.routing.shared``): two
routing services over one Redis see each other's agents and queue order, concurrent
dispatches never offer an agent beyond capacity, events go out only for what was stored,
and a Redis that is gone is a clear ``SharedStateError`` (never a crash, nothing half
written); one node (``LocalState``) keeps the service's own stores."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from itertools import count
from typing import Any

import pytest

from app.routing import codec
from app.routing.events import OfferChanged, QueueJoined, RoutingEvent
from app.routing.queue import Offer
from app.routing.service import RoutingService
from app.routing.shared import LocalState, RedisState, SharedStateError
from app.routing.state import MemoryPresence
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401  (fixture)
from tests.helpers.routing import MONDAY_10, agent, compiled, config, request

T = MONDAY_10
_IDS = count(1)


def _service(events: list[RoutingEvent], max_calls: int = 1) -> RoutingService:
    cfg = config({"ann": {**agent(), "max_calls": max_calls},
                  "bob": {**agent(), "max_calls": max_calls}},
                 {"g": {"strategy": "sequential", "members": ["ann", "bob"]}},
                 [{"name": "all", "target": {"group": "g"}}])
    return RoutingService(compiled(cfg), publish=events.append,
                          new_id=lambda: f"o{next(_IDS)}")


class Node:
    def __init__(self, url: str, name: str, max_calls: int = 1, **kw: Any) -> None:
        self.events: list[RoutingEvent] = []
        self.service = _service(self.events, max_calls)
        self.state = RedisState(self.service, url, name, **kw)

    def offers(self) -> list[tuple[str, str]]:
        return [(e.call_id, e.agent_id) for e in self.events
                if isinstance(e, OfferChanged) and e.state == "pending"]


@pytest.fixture
def nodes(redis_server: RedisServer) -> Iterator[tuple[Node, Node]]:  # noqa: F811
    yield Node(redis_server.url, "node-a"), Node(redis_server.url, "node-b")


async def _close(*nodes: Node) -> None:
    for node in nodes:
        await node.state.aclose()


async def test_two_nodes_see_each_others_agents_and_one_queue_order(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    try:
        await a.state.run(lambda s: s.login("ann", T))  # ann's desk is on node A
        await b.state.run(lambda s: s.enqueue(request(call_id="c1"), T))  # callers on B, A
        await a.state.run(lambda s: s.enqueue(request(call_id="c2"), T + timedelta(seconds=1)))
        await b.state.run(lambda s: s.enqueue(request(call_id="c3"), T + timedelta(seconds=2)))
        # Node A sees B's callers in arrival order, and node B sees A's agent.
        positions = await a.state.run(
            lambda s: [s.position(c, T)[0] for c in ("c1", "c2", "c3")])
        assert positions == [1, 2, 3]
        assert (await b.state.run(lambda s: s.presence.get("ann"))).chosen == "available"
        made = await b.state.run(lambda s: s.dispatch(T + timedelta(seconds=3)))
        # Node B's dispatch offers the first caller to A's agent, and says so once, on B.
        assert [(o.call_id, o.agent_id) for o in made] == [("c1", "ann")]
        assert b.offers() == [("c1", "ann")] and a.offers() == []
        await a.state.run(lambda s: s.accept(made[0].id, T + timedelta(seconds=4)))
        assert await b.state.run(lambda s: [e.call_id for e in s.queues.waiting()]) == \
            ["c2", "c3"]
        presence = await b.state.run(lambda s: s.presence.get("ann"))
        assert presence is not None and presence.calls == ("c1",)
        assert a.state.figures.reloads >= 2 and b.state.figures.reloads >= 2
    finally:
        await _close(a, b)


async def test_concurrent_dispatches_never_offer_an_agent_beyond_capacity(
        redis_server: RedisServer) -> None:  # noqa: F811
    nodes = [Node(redis_server.url, f"node-{i}", max_calls=2) for i in range(4)]
    try:
        await nodes[0].state.run(lambda s: s.login("ann", T))
        await nodes[1].state.run(lambda s: s.login("bob", T))
        for i in range(12):
            node = nodes[i % 4]
            await node.state.run(
                lambda s, i=i: s.enqueue(request(call_id=f"c{i}"), T + timedelta(seconds=i)))

        async def dispatch(node: Node) -> list[Offer]:
            return await node.state.run(lambda s: s.dispatch(T + timedelta(seconds=20)))

        made = await asyncio.gather(*(dispatch(n) for n in nodes for _ in range(3)))
        offers = [o for batch in made for o in batch]
        by_agent = {name: [o.call_id for o in offers if o.agent_id == name]
                    for name in ("ann", "bob")}
        assert sorted(len(v) for v in by_agent.values()) == [2, 2]  # capacity 2 each, not 24
        assert len({o.call_id for o in offers}) == 4  # no caller offered twice
        # The four callers offered are the first four to arrive, whichever node queued them.
        assert sorted(o.call_id for o in offers) == ["c0", "c1", "c2", "c3"]
        presence = await nodes[3].state.run(lambda s: s.presence.snapshot())
        assert {a: len(p.offers) for a, p in presence.items()} == {"ann": 2, "bob": 2}
    finally:
        await _close(*nodes)


async def test_an_operation_that_fails_writes_nothing_and_emits_nothing(
        nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    try:
        await a.state.run(lambda s: s.login("ann", T))

        def half_done(s: RoutingService) -> None:
            s.enqueue(request(call_id="c1"), T)
            raise RuntimeError("bug after the enqueue")

        with pytest.raises(RuntimeError, match="bug after"):
            await a.state.run(half_done)
        assert not any(isinstance(e, QueueJoined) for e in a.events)
        assert await b.state.run(lambda s: list(s.queues.waiting())) == []
        assert await a.state.run(lambda s: list(s.queues.waiting())) == []  # no stale copy
    finally:
        await _close(a, b)


async def test_redis_gone_is_a_clear_error_and_the_state_is_back_with_it(
        redis_server: RedisServer) -> None:  # noqa: F811
    node = Node(redis_server.url, "node-a", lock_wait_s=1.0)
    try:
        await node.state.run(lambda s: s.login("ann", T))
        redis_server.stop()
        with pytest.raises(SharedStateError, match="unreachable"):
            await node.state.run(lambda s: s.enqueue(request(call_id="c1"), T))
        assert not any(isinstance(e, QueueJoined) for e in node.events)
        redis_server.start()  # an empty Redis (no persistence): ann's presence is gone
        ticket = await node.state.run(lambda s: s.enqueue(request(call_id="c1"), T))
        assert (ticket.status, ticket.action) == ("exit", "no_route")  # nobody logged in
        assert node.state.figures.resets == 1 and node.state.figures.failures >= 1
        await node.state.run(lambda s: s.login("ann", T))  # her desk says she is there
        ticket = await node.state.run(lambda s: s.enqueue(request(call_id="c2"), T))
        assert ticket.status == "queued"
    finally:
        await _close(node)


async def test_a_value_in_an_unknown_format_is_skipped_and_counted(
        nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    try:
        await a.state.run(lambda s: s.login("ann", T))
        await a.state._client.hset(a.state.key("presence"), "bob",
                                   '{"v": 99, "data": {}}')
        await a.state._client.incr(a.state.key("rev"))
        snapshot = await a.state.run(lambda s: s.presence.snapshot())
        assert set(snapshot) == {"ann"} and a.state.figures.bad_values == 1
    finally:
        await _close(*nodes)


def test_codec_round_trips_and_names_what_is_wrong() -> None:
    events: list[RoutingEvent] = []
    svc = _service(events)
    svc.login("ann", T)
    svc.enqueue(request(call_id="c1"), T)
    offer = svc.dispatch(T)[0]
    entry = svc.queues.get("c1")
    presence = svc.presence.get("ann")
    assert entry is not None and presence is not None
    assert codec.load_entry(codec.dump_entry(entry)) == entry
    assert codec.load_presence(codec.dump_presence(presence)) == presence
    assert codec.load_offer(codec.dump_offer(offer)) == offer
    with pytest.raises(ValueError, match=r"^offer: format 2, this node reads format 1$"):
        codec.load_offer('{"v": 2, "data": {}}')
    with pytest.raises(ValueError, match=r"^presence: not JSON"):
        codec.load_presence("{")
    with pytest.raises(ValueError, match=r"^presence: chosen: Input should be"):
        codec.load_presence('{"v": 1, "data": {"agent_id": "ann", "chosen": "asleep"}}')


async def test_one_node_keeps_the_services_own_stores() -> None:
    events: list[RoutingEvent] = []
    svc = _service(events)
    stores = svc.presence
    state = LocalState(svc)
    await state.run(lambda s: s.login("ann", T))
    assert svc.presence is stores and isinstance(stores, MemoryPresence)
    assert stores.get("ann") is not None and len(events) == 1  # emitted at once, as before
    await state.aclose()


async def test_refresh_brings_a_nodes_copy_up_to_date_without_writing(
        nodes: tuple[Node, Node], redis_server: RedisServer) -> None:  # noqa: F811
    a, b = nodes
    try:
        await a.state.run(lambda s: s.login("ann", T))
        await b.state.run(lambda s: s.enqueue(request(call_id="c1"), T))
        await a.state.run(lambda s: s.login("bob", T))  # B's copy does not know it yet
        assert b.service.presence.get("bob") is None
        rev = await b.state._client.get(b.state.key("rev"))
        runs, reloads = b.state.figures.runs, b.state.figures.reloads
        await b.state.refresh()
        presence = b.service.presence.get("bob")
        assert presence is not None and presence.chosen == "available"
        assert [e.call_id for e in b.service.queues.waiting()] == ["c1"]
        assert await b.state._client.get(b.state.key("rev")) == rev  # nothing written
        assert (b.state.figures.runs, b.state.figures.reloads) == (runs, reloads + 1)
        await b.state.refresh()  # unchanged: one GET, nothing decoded again
        assert b.state.figures.reloads == reloads + 1
        # The refreshed copy serves the next transaction without reloading.
        await b.state.run(lambda s: s.dispatch(T + timedelta(seconds=1)))
        assert b.state.figures.reloads == reloads + 1 and b.offers() == [("c1", "ann")]

        redis_server.stop()
        with pytest.raises(SharedStateError, match="unreachable"):
            await b.state.refresh()
        assert b.service.presence.get("bob") is not None  # the last copy stays for reads
        redis_server.start()  # empty: the refreshed copy is empty too
        await b.state.refresh()
        assert b.service.presence.get("bob") is None and not b.service.queues.waiting()
        assert b.state.figures.resets == 1
    finally:
        await _close(a, b)


async def test_a_state_lost_is_never_taken_for_a_copy_at_the_same_revision(
        nodes: tuple[Node, Node], redis_server: RedisServer) -> None:  # noqa: F811
    """Redis restarted empty, and another node's writes brought the new state to exactly the
    revision this node's copy has: the epoch tells them apart, so this node reloads (and
    rebuilds) instead of writing its old copy over the new state."""
    a, b = nodes
    lost: list[Any] = []
    b.state.on_reset = lost.append
    try:
        await b.state.run(lambda s: s.login("ann", T))
        await b.state.run(lambda s: s.enqueue(request(call_id="c1"), T))
        assert b.state._cache is not None
        rev = b.state._cache.rev
        redis_server.stop()
        redis_server.start()  # empty
        await a.state.run(lambda s: s.login("bob", T))  # A alone, on the new state,
        for i in range(rev - 1):  # up to B's revision
            await a.state.run(lambda s, i=i: s.enqueue(request(call_id=f"n{i}"), T))
        assert int(await a.state._client.get(a.state.key("rev"))) == rev
        await b.state.run(lambda s: s.tick(T))  # B's next transaction
        assert b.state.figures.resets == 1 and len(lost) == 1
        assert [e.call_id for e in lost[0].queue.values()] == ["c1"]  # what B knew
        assert set(lost[0].presence) == {"ann"}
        assert set(b.service.presence.snapshot()) == {"bob"}  # the new state, not B's copy
        assert b.service.queues.get("c1") is None
        await a.state.refresh()
        assert set(a.service.presence.snapshot()) == {"bob"}  # B wrote nothing of its copy
        assert a.service.queues.get("c1") is None
    finally:
        await _close(a, b)
