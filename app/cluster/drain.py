"""Draining a node before it stops (SIGTERM; a rolling upgrade): no new call, the calls up
finish, bounded by ``drain_timeout_s``.

While draining, ``CallManager.check_capacity`` refuses every new call with
``NodeDrainingError`` (a WebRTC offer gets 503 + Retry-After, a SIP INVITE 503), OPTIONS is
answered 503 (Kamailio's dispatcher stops routing here), and ``/readyz`` is not ready (a load
balancer stops sending HTTP here).
"""

from __future__ import annotations

import asyncio
import signal
from types import FrameType
from typing import Any

import uvicorn

from app.call.manager import CallManager
from app.cluster.leader import Leadership
from app.log import get_logger
from app.metrics import NODE_DRAINING


async def drain(calls: CallManager, timeout_s: float,
                leadership: Leadership | None = None) -> list[str]:
    """Stop taking calls, give up leadership (a successor runs the singletons at once) and
    wait up to ``timeout_s`` for the voice calls up to end; returns the calls still up (the
    shutdown that follows ends them ``interrupted``)."""
    log = get_logger(component="drain")
    calls.draining = True
    NODE_DRAINING.set(1)
    if leadership is not None:
        await leadership.aclose()
    tasks = {}
    for call_id in calls.active():
        session, task = calls.session(call_id), calls.task(call_id)
        if session is not None and task is not None and session.info.channel != "chat":
            tasks[call_id] = task
    log.warning("node_draining", calls_up=len(tasks), timeout_s=timeout_s)
    if tasks and timeout_s > 0:
        await asyncio.wait(tasks.values(), timeout=timeout_s)
    left = [call_id for call_id, task in tasks.items() if not task.done()]
    log.warning("node_drained", calls_left=len(left), call_ids=left)
    return left


class DrainingServer(uvicorn.Server):
    """uvicorn's server, where SIGTERM drains first: ``drain`` runs on the app's calls, then
    the server stops as usual (lifespan shutdown ends what is left). A second SIGTERM, or
    SIGINT (Ctrl+C), stops at once as plain uvicorn does."""

    def __init__(self, config: uvicorn.Config, app: Any, timeout_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._timeout_s = timeout_s
        self._drain_task: asyncio.Task[None] | None = None
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        services = getattr(self._app.state, "services", None)
        if sig != signal.SIGTERM or self._draining or services is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        # a signal handler may interrupt the loop anywhere: schedule, do not run, the drain
        asyncio.get_running_loop().call_soon_threadsafe(self._start_drain, services.calls,
                                                          services.leadership)

    def _start_drain(self, calls: CallManager, leadership: Leadership | None) -> None:
        self._drain_task = asyncio.get_running_loop().create_task(
            self._drain_then_exit(calls, leadership), name="drain")

    async def _drain_then_exit(self, calls: CallManager, leadership: Leadership | None) -> None:
        try:
            await drain(calls, self._timeout_s, leadership)
        finally:
            self.should_exit = True
