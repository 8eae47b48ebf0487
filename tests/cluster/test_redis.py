"""The shared parts in a real Redis: live call events cross nodes (and resume after Redis
restarts), rate limits count every node's hits together (and fail open, without blocking the event
loop, when Redis hangs or is gone)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from prometheus_client import REGISTRY

from app.auth.ratelimit import RateLimits
from app.call.bus import EventBus, LiveBus
from app.cluster.redis_bus import RedisEventBus
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401  (fixture)


async def _next(queue: asyncio.Queue[dict[str, Any]], timeout_s: float = 20) -> dict[str, Any]:
    return await asyncio.wait_for(queue.get(), timeout_s)


def _event(call_id: str, seq: int) -> dict[str, Any]:
    return {"type": "dtmf", "digit": str(seq % 10), "call_id": call_id, "seq": seq}


async def test_a_desk_on_one_node_follows_a_call_on_another_across_a_redis_restart(
        redis_server: RedisServer) -> None:  # noqa: F811
    node_a = RedisEventBus(redis_server.url, "node-a", block_ms=200)
    node_b = RedisEventBus(redis_server.url, "node-b", block_ms=200)
    buses: list[LiveBus] = [node_a, node_b, EventBus()]
    assert [b.shared for b in buses] == [True, True, False]
    await node_a.start()
    await node_b.start()
    try:
        async with node_b.subscribe("probe") as probes:
            await _wait_reader_ready(node_a, probes)
        async with node_b.subscribe("call-1") as desk, node_a.subscribe("call-1") as local, \
                node_b.subscribe() as monitor:
            node_a.publish(_event("call-1", 2))
            node_a.publish(_event("call-2", 1))  # another call: not this desk's
            assert (await _next(desk))["seq"] == 2
            assert (await _next(local))["seq"] == 2 and local.empty()  # once, not echoed
            assert [(await _next(monitor))["call_id"] for _ in range(2)] == ["call-1", "call-2"]

            redis_server.stop()  # Redis lost mid-call: node-a keeps publishing
            node_a.publish(_event("call-1", 3))
            assert (await _next(local))["seq"] == 3  # its own followers miss nothing
            redis_server.start()
            node_a.publish(_event("call-1", 4))
            assert [(await _next(desk, 60))["seq"] for _ in range(2)] == [3, 4]  # resumed
            assert node_a.dropped == 0 and node_b.received >= 4
    finally:
        await node_a.aclose()
        await node_b.aclose()


async def _wait_reader_ready(sender: RedisEventBus,
                             probes: asyncio.Queue[dict[str, Any]]) -> None:
    """The receiving node's reader has its starting point: a probe event gets through."""
    for _ in range(100):
        sender.publish({"type": "probe", "call_id": "probe", "seq": 0})
        try:
            await asyncio.wait_for(probes.get(), 0.5)
        except TimeoutError:
            continue
        return
    raise AssertionError("the receiving node never saw the probe")


async def test_rate_limits_count_every_nodes_hits_together_and_fail_open_without_redis(
        redis_server: RedisServer) -> None:  # noqa: F811
    node_a = RateLimits({"login": "3/minute"}, redis_server.url)
    node_b = RateLimits({"login": "3/minute"}, redis_server.url)
    assert [await node_a.hit("login", "198.51.100.7"), await node_b.hit("login", "198.51.100.7"),
            await node_a.hit("login", "198.51.100.7")] == [None, None, None]
    retry = await node_b.hit("login", "198.51.100.7")  # the 4th, on another node: refused
    assert retry is not None and 1 <= retry <= 60
    assert await node_b.hit("login", "203.0.113.9") is None  # another client: its own count
    local = RateLimits({"login": "3/minute"})  # one node (make run): counted in process
    assert [await local.hit("login", "198.51.100.7") for _ in range(4)][-1] is not None

    failures = _store_failures()
    assert redis_server.proc is not None
    redis_server.proc.send_signal(signal.SIGSTOP)  # Redis hangs: the hit waits, the loop runs
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(ticker())
    try:
        assert await node_a.hit("login", "198.51.100.7") is None  # allowed (fail open)
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
        redis_server.proc.send_signal(signal.SIGCONT)
    assert ticks >= 5  # the event loop kept running while Redis did not answer
    assert _store_failures() == failures + 1
    redis_server.stop()  # Redis gone: skipped for a while, allowed without a new failure
    assert await node_a.hit("login", "198.51.100.7") is None
    assert _store_failures() == failures + 1
    assert await node_b.hit("login", "198.51.100.7") is None  # refused connection: open too
    assert _store_failures() == failures + 2


def _store_failures() -> float:
    return REGISTRY.get_sample_value("hotline_rate_limit_store_failures_total") or 0.0
