"""Leader election on a real Redis (``app.cluster.leader.RedisLeadership``): exactly one of
two nodes leads; a leader that closes hands over at once; a leader that stops renewing
(hung, killed) is replaced after its lease, never overlapping; Redis lost, the leader steps
down and its leader-only job is cancelled, and once Redis is back exactly one leads. And the
singleton it guards: only the leader's ``NodeLiveness`` sweeps for lost nodes, and when the
leader itself is lost the other node finalizes its calls (real SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from app.cluster.leader import LEADER_KEY, RedisLeadership
from app.cluster.liveness import NodeLiveness
from app.settings import Settings
from app.storage import CallRepository, Database
from tests.helpers.redis_server import RedisServer, redis_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.scale
TTL_S = 2.0  # short, so a failover takes seconds; renewed every 0.67 s
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def _until(what: str, condition: Callable[[], bool], timeout_s: float = 60,
                 check: Callable[[], None] | None = None) -> float:
    """Poll ``condition`` every 10 ms (running ``check`` at each poll); seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        if check is not None:
            check()
        if loop.time() - started > timeout_s:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(0.01)
    return loop.time() - started


def _never_both(a: RedisLeadership, b: RedisLeadership) -> Callable[[], None]:
    def check() -> None:
        assert not (a.leading and b.leading), "two leaders at once"
    return check


def _only_one(a: RedisLeadership, b: RedisLeadership, leader: RedisLeadership
              ) -> Callable[[], None]:
    def check() -> None:
        assert leader.leading and not (a.leading and b.leading), "not the one leader"
    return check


async def _pair(url: str) -> tuple[RedisLeadership, RedisLeadership]:
    a = RedisLeadership(url, "node-a", ttl_s=TTL_S)
    b = RedisLeadership(url, "node-b", ttl_s=TTL_S)
    await a.start()  # node-a first: it takes the free lease at its first try
    await b.start()
    return a, b


async def test_one_leads_and_a_closed_leader_hands_over_at_once(
        redis_server: RedisServer) -> None:  # noqa: F811
    a, b = await _pair(redis_server.url)
    probe = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert a.leading and not b.leading
        assert a.leader_id == "node-a" and b.leader_id == "node-a"
        renewals = a.renewals
        await _until("two renewals", lambda: a.renewals >= renewals + 2,
                     check=_only_one(a, b, a))
        await a.aclose()
        assert not a.leading
        holder = await probe.get(LEADER_KEY)
        assert holder is None or holder.startswith("node-b:")  # released, not left to expire
        took_s = await _until("node-b leads", lambda: b.leading, check=_never_both(a, b))
        print(f"\nhand-over after a leader closed: {took_s:.2f} s "
              f"(retry period {TTL_S / 3:.2f} s, lease {TTL_S} s)")
        assert b.leader_id == "node-b" and b.acquired == 1
    finally:
        await a.aclose()
        await b.aclose()
        await probe.aclose()


async def test_a_leader_that_stops_renewing_is_replaced_after_its_lease_never_both(
        redis_server: RedisServer) -> None:  # noqa: F811
    a, b = await _pair(redis_server.url)
    loop = asyncio.get_running_loop()
    try:
        assert a.leading
        run = asyncio.create_task(a.run_if_leading(_endless_job(asyncio.Event())))
        a.stop_renewing()  # hung or killed: no renewal, no release
        stopped_at = loop.time()
        await _until("node-a stops leading", lambda: not a.leading, check=_never_both(a, b))
        a_ended_s = loop.time() - stopped_at
        assert await asyncio.wait_for(run, 30) is None  # its job stopped with its lease
        await _until("node-b leads", lambda: b.leading, check=_never_both(a, b))
        b_took_s = loop.time() - stopped_at
        print(f"\nleader hung: it stopped leading {a_ended_s:.2f} s after its renewals "
              f"stopped, node-b led {b_took_s:.2f} s after (lease {TTL_S} s)")
        assert b_took_s >= a_ended_s  # the successor only after the old lease ran out
        await _keeps_leading(b, a, b)
    finally:
        await a.aclose()
        await b.aclose()


async def _keeps_leading(leader: RedisLeadership, a: RedisLeadership,
                         b: RedisLeadership) -> None:
    """``leader`` renews twice more while it alone leads."""
    renewals = leader.renewals
    await _until(f"two renewals by {leader.node_id}", lambda: leader.renewals >= renewals + 2,
                 check=_only_one(a, b, leader))


async def test_redis_lost_the_leader_steps_down_and_its_job_stops_then_one_leads_again(
        redis_server: RedisServer) -> None:  # noqa: F811
    a, b = await _pair(redis_server.url)
    job_started, job_cancelled = asyncio.Event(), asyncio.Event()
    try:
        run = asyncio.create_task(a.run_if_leading(_endless_job(job_cancelled, job_started)))
        await asyncio.wait_for(job_started.wait(), 30)
        redis_server.stop()
        await _until("node-a steps down", lambda: not a.leading, check=_never_both(a, b))
        assert await asyncio.wait_for(run, 30) is None and job_cancelled.is_set()
        assert a.leader_id is None or a.leader_id == "node-a"
        assert not b.leading
        redis_server.start()  # empty (no persistence): the lease is gone
        await _until("one node leads again", lambda: a.leading or b.leading,
                     check=_never_both(a, b))
        await _keeps_leading(a if a.leading else b, a, b)
    finally:
        await a.aclose()
        await b.aclose()


async def test_only_the_leader_sweeps_and_a_lost_leaders_calls_are_finalized_by_the_other(
        redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    db = Database(f"sqlite:///{tmp_path / 'hotline.db'}")
    db.migrate()
    repo = CallRepository(db)
    clock = [T0]
    lead_a, lead_b = await _pair(redis_server.url)
    node_a, node_b = (
        NodeLiveness(repo, Settings(data_dir=tmp_path, node_id=lead.node_id,
                                    node_stale_after_s=15), clock=lambda: clock[0],
                     leadership=lead) for lead in (lead_a, lead_b))
    try:
        repo.heartbeat("node-c", T0 - timedelta(minutes=1))  # lost before the test
        _call(repo, "c-1", "node-c")
        _call(repo, "a-1", "node-a")
        assert await node_b.tick() == {} and node_b.sweeps == 0  # not the leader: no sweep
        assert _open(repo, "c-1")
        assert await node_a.tick() == {"node-c": ["c-1"]} and node_a.sweeps == 1

        lead_a.stop_renewing()  # node-a (the leader) is lost: no more beats, no renewals
        clock[0] = T0 + timedelta(seconds=16)
        await _until("node-b leads", lambda: lead_b.leading)
        assert await node_b.tick() == {"node-a": ["a-1"]} and node_b.sweeps == 1
        assert not _open(repo, "a-1")
    finally:
        await lead_a.aclose()
        await lead_b.aclose()
        db.dispose()


def _endless_job(cancelled: asyncio.Event, started: asyncio.Event | None = None
                 ) -> Callable[[], Coroutine[Any, Any, str]]:
    """A leader-only job that runs until cancelled (and says so)."""
    async def job() -> str:
        if started is not None:
            started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return "never"
    return job


def _call(repo: CallRepository, call_id: str, node: str) -> None:
    repo.start_call(call_id, "4008001234", "+8613800138000", "sip", "zh", T0, "demo",
                    node_id=node)


def _open(repo: CallRepository, call_id: str) -> bool:
    detail = repo.get_call(call_id)
    assert detail is not None
    return detail.cdr.ended_at is None
