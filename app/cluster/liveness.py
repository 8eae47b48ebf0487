"""``NodeLiveness``: this node's heartbeat, and the calls of lost nodes finalized.

Every ``node_heartbeat_s`` the node writes its heartbeat (``node_heartbeats``) and then looks
for nodes whose heartbeat is older than ``node_stale_after_s`` (killed, machine lost): their
calls still in flight get outcome ``interrupted``, ended at their last stored event, partial
recordings registered, in one transaction that only one survivor runs per lost node
(``CallRepository.finalize_lost_nodes``). A lost node's calls are so finalized within
``node_stale_after_s + node_heartbeat_s`` (20 s with the defaults). Node clocks must agree
(NTP) to well within ``node_stale_after_s``.

Every node writes its heartbeat; only the leader (``app.cluster.leader``: always this node
without Redis) looks for lost nodes, and its sweep is cancelled if it loses leadership
meanwhile (a transaction already in its thread finishes or rolls back on its own: the lost
node's row is taken ``FOR UPDATE SKIP LOCKED``, so a brief second leader is harmless). A lost
leader's successor takes over within ``leader_ttl_s`` x 4/3 (the lease runs out, then the
next try); while that is under ``node_stale_after_s`` (13.3 s < 15 s with the defaults) a lost
leader's calls, too, are finalized within ``node_stale_after_s + node_heartbeat_s``.

``on_lost`` (wired by ``build_services``: the live routing's ``release_lost``) is told the
calls each sweep finalized, so the shared routing state lets them go (queue entries, offers,
agents on them); a failure there is logged, never stops the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

from app.cluster.leader import Leadership, LocalLeadership
from app.events import utc_now
from app.log import get_logger
from app.metrics import HEARTBEAT_FAILURES, LOST_NODE_CALLS
from app.settings import Settings
from app.storage.repository import CallRepository


class NodeLiveness:
    def __init__(self, repo: CallRepository, settings: Settings, *,
                 recording_duration: Callable[[str], float | None] | None = None,
                 clock: Callable[[], datetime] = utc_now,
                 leadership: Leadership | None = None) -> None:
        self.repo = repo
        self.node_id = settings.node_id
        self.leadership = leadership or LocalLeadership(settings.node_id)
        self.sweeps = 0  # lost-node sweeps run here (only while leading)
        self.on_lost: Callable[[dict[str, list[str]]], Awaitable[None]] | None = None
        self.every_s = settings.node_heartbeat_s
        self.stale_after_s = settings.node_stale_after_s
        self._recording_duration = recording_duration
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger(component="liveness", node_id=self.node_id)

    async def tick(self) -> dict[str, list[str]]:
        """One heartbeat and, on the leader, one look for lost nodes; returns {lost node:
        finalized calls}."""
        problem = await asyncio.to_thread(self.repo.heartbeat, self.node_id, self._clock())
        if problem is not None:
            HEARTBEAT_FAILURES.inc()
            self._log.error("heartbeat_failed", reason=problem)
            return {}  # a node that cannot write must not judge the others
        return await self.leadership.run_if_leading(self._sweep) or {}

    async def _sweep(self) -> dict[str, list[str]]:
        """The leader's singleton: finalize the calls of nodes whose heartbeat is stale."""
        self.sweeps += 1
        lost = await asyncio.to_thread(
            lambda: self.repo.finalize_lost_nodes(
                self._clock(), survivor=self.node_id, stale_after_s=self.stale_after_s,
                recording_duration=self._recording_duration))
        for node, call_ids in lost.items():
            LOST_NODE_CALLS.inc(len(call_ids))
            self._log.warning("lost_node_calls_finalized", lost_node=node, count=len(call_ids),
                              call_ids=call_ids)
        if lost and self.on_lost is not None:
            try:
                await self.on_lost(lost)
            except Exception as exc:  # the records are final; the routing lets go later
                self._log.error("lost_node_release_failed", lost_nodes=sorted(lost),
                                error=f"{type(exc).__name__}: {exc}")
        return lost

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # the database is down: try again next beat
                HEARTBEAT_FAILURES.inc()
                self._log.error("liveness_tick_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.every_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"liveness-{self.node_id}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
