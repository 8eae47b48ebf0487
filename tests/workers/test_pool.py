"""The generic worker pool with a tiny real worker (``tests.workers.echo``): spawn, restart,
timeout, bounded queue, protocol errors and a clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from app.workers.pool import PoolConfig, WorkerStartError
from app.workers.requests import RequestError, RequestPool

ENTRY = "tests.workers.echo:main"
PRELOAD = "tests.workers.echo:preload"


def config(**changes: object) -> PoolConfig:
    base: dict[str, object] = {"name": "echo", "size": 1, "entry": ENTRY, "timeout_s": 2.0,
                               "preload": PRELOAD, "preload_args": {"dictionary": "loaded"}}
    base.update(changes)
    return PoolConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def make_pool() -> Iterator[Callable[..., RequestPool]]:
    pools: list[RequestPool] = []

    def make(queue_max: int = 8, **changes: object) -> RequestPool:
        pool = RequestPool(config(**changes), queue_max)
        pool.start()
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_workers_start_from_the_preloaded_zygote_and_answer(make_pool: Callable[...,
                                                                  RequestPool]) -> None:
    pool = make_pool(size=2)
    pids = pool.pids
    assert len({p for p in pids if p}) == 2
    slot = pool.pool.slots[0]
    assert slot.info["preloaded"] == {"dictionary": "loaded"}  # what the zygote loaded, inherited
    assert pool.pool.zygote.info["zygote_pid"] not in pids
    answers = await asyncio.gather(*(pool.request({"op": "echo"}, bytes([n]) * 1000)
                                     for n in range(6)))
    assert [a.payload for a in answers] == [bytes([n]) * 1000 for n in range(6)]
    assert {a.header["pid"] for a in answers} <= set(pids)
    assert pool.stats.spawns == 2 and pool.stats.requests == 6


async def test_a_killed_idle_worker_is_replaced(make_pool: Callable[..., RequestPool]) -> None:
    pool = make_pool()
    (pid,) = pool.pids
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: pool.pids[0] not in (None, pid))
    answer = await pool.request({"op": "echo"}, b"again")
    assert answer.payload == b"again"
    assert pool.stats.restarts == 1 and pool.stats.crashes == 1


async def test_a_worker_killed_mid_request_is_replaced_and_the_request_retried(
    make_pool: Callable[..., RequestPool],
) -> None:
    pool = make_pool(timeout_s=30.0)
    (pid,) = pool.pids
    assert pid is not None
    request = asyncio.ensure_future(pool.request({"op": "sleep", "s": 1.0}, b"x"))
    await wait_for(lambda: pool.pool.slots[0].work == 1)
    os.kill(pid, signal.SIGKILL)
    answer = await request
    assert answer.payload == b"x" and answer.header["pid"] != pid
    assert pool.stats.crashes == 1 and pool.stats.restarts == 1


async def test_a_hung_worker_times_out_and_is_replaced(
    make_pool: Callable[..., RequestPool],
) -> None:
    pool = make_pool(timeout_s=1.0)
    (pid,) = pool.pids
    with pytest.raises(RequestError, match="answered nothing for 1 s") as err:
        await pool.request({"op": "sleep", "s": 60})
    assert err.value.reason == "timeout"
    assert pool.pids[0] not in (None, pid)
    assert not alive(pid)  # killed, not left running
    assert (await pool.request({"op": "echo"}, b"ok")).payload == b"ok"
    assert pool.stats.timeouts == 1 and pool.stats.restarts == 1


async def test_a_request_that_kills_its_worker_twice_fails_alone(
    make_pool: Callable[..., RequestPool],
) -> None:
    pool = make_pool()
    with pytest.raises(RequestError, match="died twice") as err:
        await pool.request({"op": "exit"})
    assert err.value.reason == "crashed"
    assert pool.stats.crashes == 2
    assert (await pool.request({"op": "echo"}, b"next")).payload == b"next"


async def test_the_bounded_queue_refuses_and_counts_overflow(
    make_pool: Callable[..., RequestPool],
) -> None:
    pool = make_pool(queue_max=2, timeout_s=30.0)
    slow = asyncio.ensure_future(pool.request({"op": "sleep", "s": 0.5}))
    await wait_for(lambda: pool.pool.slots[0].work == 1)
    queued = [asyncio.wrap_future(pool.submit({"op": "echo"}, bytes([n]))) for n in range(2)]
    with pytest.raises(RequestError, match="2 echo requests already waiting") as err:
        await pool.request({"op": "echo"})
    assert err.value.reason == "overloaded"
    assert pool.stats.dropped == 1
    await slow
    assert [(await q).payload for q in queued] == [b"\x00", b"\x01"]


async def test_a_cancelled_request_does_not_get_the_next_answer(
    make_pool: Callable[..., RequestPool],
) -> None:
    pool = make_pool(timeout_s=30.0)
    first = asyncio.ensure_future(pool.request({"op": "sleep", "s": 0.3}, b"first"))
    await wait_for(lambda: pool.pool.slots[0].work == 1)
    first.cancel()
    second = await pool.request({"op": "echo"}, b"second")
    assert second.payload == b"second"


async def test_a_worker_sending_garbage_is_replaced(make_pool: Callable[..., RequestPool]) -> None:
    pool = make_pool(timeout_s=30.0)
    (pid,) = pool.pids
    with pytest.raises(RequestError):
        await pool.request({"op": "garbage"})
    assert pool.pids[0] not in (None, pid)
    assert (await pool.request({"op": "echo"}, b"fine")).payload == b"fine"


async def test_a_killed_zygote_is_started_again_when_a_worker_must_be_replaced(
    make_pool: Callable[..., RequestPool],
) -> None:
    pool = make_pool()
    zygote = pool.pool.zygote.pid
    (pid,) = pool.pids
    assert zygote is not None and pid is not None
    os.kill(zygote, signal.SIGKILL)
    assert (await pool.request({"op": "echo"}, b"still")).payload == b"still"  # workers live on
    os.kill(pid, signal.SIGKILL)
    await wait_for(lambda: pool.pids[0] not in (None, pid))
    assert pool.pool.zygote.pid not in (None, zygote)
    assert (await pool.request({"op": "echo"}, b"back")).payload == b"back"


def test_a_failing_preload_is_reported_with_its_reason() -> None:
    pool = RequestPool(config(preload_args={"fail": "the model"}), 4)
    with pytest.raises(WorkerStartError, match="ValueError: cannot load the model"):
        pool.start()
    pool.close()


def test_a_missing_entry_is_reported() -> None:
    pool = RequestPool(config(entry="tests.workers.echo:nope"), 4)
    with pytest.raises(WorkerStartError, match="exited during start"):
        pool.start()
    pool.close()


async def test_close_leaves_no_process_thread_or_descriptor() -> None:
    fds_before = set(os.listdir("/proc/self/fd"))
    pool = RequestPool(config(size=2), 4)
    await asyncio.to_thread(pool.start)
    pids = [p for p in pool.pids if p] + [pool.pool.zygote.info["zygote_pid"]]
    await pool.request({"op": "echo"})
    pending = asyncio.ensure_future(pool.request({"op": "sleep", "s": 30}))
    await wait_for(lambda: any(s.work for s in pool.pool.slots))
    await asyncio.to_thread(pool.close)
    with pytest.raises(RequestError, match="stopped") as err:
        await pending
    assert err.value.reason == "closed"
    assert not any(alive(pid) for pid in pids)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("echo-")]
    assert set(os.listdir("/proc/self/fd")) == fds_before
    with pytest.raises(RequestError, match="not running"):
        await pool.request({"op": "echo"})
