"""What a routing operation costs when the state is shared in Redis (``RedisState``) beside
the in-process baseline (``LocalState``), measured in the same run on a private local
``redis-server``.

    python -m bench.routing_state [--agents 20] [--queued 20] [--ops 300]

A queue of ``--queued`` callers and ``--agents`` logged-in agents (all busy, so dispatch
offers nothing and the queue stays the same size); each round runs, one transaction each:
enqueue (a new caller), a dispatch, a position/announcement read, a leave. Reported per
operation, median and p95: one node alone (the state cached between operations: only the
revision is read), and two nodes alternating (every operation reloads the whole state: the
worst case, each node's copy is always stale).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.routing.service import RoutingService
from app.routing.shared import LocalState, RedisState, RoutingState
from tests.helpers.redis_server import RedisServer
from tests.helpers.routing import MONDAY_10, agent, compiled, config, request
from tests.helpers.server import free_port

T = MONDAY_10


def _service(agents: int) -> RoutingService:
    names = [f"a{i}" for i in range(agents)]
    cfg = config({n: agent() for n in names},
                 {"g": {"strategy": "longest_idle", "members": names, "max_wait_s": 3600}},
                 [{"name": "all", "target": {"group": "g"}}])
    return RoutingService(compiled(cfg))


async def _prepare(state: RoutingState, agents: int, queued: int) -> None:
    for i in range(agents):  # logged in, each on a call: no offers, a stable queue
        await state.run(lambda s, i=i: s.login(f"a{i}", T))
    for i in range(agents):
        await state.run(lambda s, i=i: s.enqueue(request(call_id=f"busy{i}"), T))
    offers = await state.run(lambda s: s.dispatch(T))
    for offer in offers:
        await state.run(lambda s, o=offer: s.accept(o.id, T))
    for i in range(queued):
        await state.run(lambda s, i=i: s.enqueue(request(call_id=f"q{i}"),
                                                 T + timedelta(seconds=i)))


async def _round(states: list[RoutingState], n: int, times: dict[str, list[float]]) -> None:
    now = T + timedelta(seconds=100 + n)
    ops: list[tuple[str, Callable[[RoutingService], Any]]] = [
        ("enqueue", lambda s: s.enqueue(request(call_id=f"r{n}"), now)),
        ("dispatch", lambda s: s.dispatch(now)),
        ("announcement", lambda s: s.announcement(f"r{n}", now)),
        ("leave", lambda s: s.leave(f"r{n}", now)),
    ]
    for i, (name, op) in enumerate(ops):
        state = states[(n + i) % len(states)]
        started = time.perf_counter()
        await state.run(op)
        times.setdefault(name, []).append((time.perf_counter() - started) * 1000)


async def _measure(states: list[RoutingState], ops: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for n in range(ops):
        await _round(states, n, times)
    return times


def _row(label: str, times: dict[str, list[float]]) -> str:
    cells = []
    for name, values in times.items():
        p95 = sorted(values)[int(0.95 * (len(values) - 1))]
        cells.append(f"{name} {statistics.median(values):.3f}/{p95:.3f}")
    return f"{label:<28} " + "  ".join(cells)


async def main_async(agents: int, queued: int, ops: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), free_port())
        server.start()
        try:
            local = LocalState(_service(agents))
            await _prepare(local, agents, queued)
            a = RedisState(_service(agents), server.url, "node-a")
            b = RedisState(_service(agents), server.url, "node-b")
            await _prepare(a, agents, queued)
            rows = [("in process (LocalState)", await _measure([local], ops)),
                    ("Redis, one node (cached)", await _measure([a], ops)),
                    ("Redis, two nodes alternate", await _measure([a, b], ops))]
            print(f"routing operation cost, ms median/p95 ({agents} agents, {queued} queued, "
                  f"{ops} rounds; shared 2-core box: pessimistic)")
            for label, times in rows:
                print(_row(label, times))
            print(f"node-a: {a.figures.runs} transactions, {a.figures.reloads} full reloads, "
                  f"{a.figures.conflicts} conflicts")
            await a.aclose()
            await b.aclose()
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--queued", type=int, default=20)
    parser.add_argument("--ops", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main_async(args.agents, args.queued, args.ops))


if __name__ == "__main__":
    main()
