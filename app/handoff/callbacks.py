"""Callbacks: a caller who asked to be called back is a queued task with their packet.

The task waits in its group keeping the caller's original join time (and place); an
available agent gets it like a call (the desk rings with the packet). When they answer, the
caller's number is dialled through the outbound leg and the two are bridged; the result is
``callback_done`` in the original call's record (CDR: callback status and time).

The original call has ended by then, so the task's events go to its record through
``LateLog``: stored in order after the record was closed, and published live.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from app.call.ports import EventPublisher
from app.events import utc_now
from app.handoff.live import CallLink, Connected, DeskError, Exited, LiveRouting
from app.handoff.packet import HandoffPacket
from app.log import get_logger
from app.media.bridge import bridge
from app.record import (
    AgentConnected,
    AgentDisconnected,
    CallbackDone,
    CallEvent,
    event_payload,
)
from app.routing.plan import RouteRequest
from app.routing.queue import CALLBACK_EXPIRED
from app.storage.handoff_repo import HandoffRepository


class LateLog:
    """Events for records already closed: one writer, in order; failures are logged."""

    def __init__(self, repo: HandoffRepository, bus: EventPublisher) -> None:
        self.repo = repo
        self.bus = bus
        self.log = get_logger(component="late_log")
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], datetime]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def emitter(self, call_id: str) -> Callable[[CallEvent], Any]:
        def emit(event: CallEvent) -> None:
            self._queue.put_nowait((call_id, event_payload(event), utc_now()))
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write(), name="late-log")
        return emit

    async def _write(self) -> None:
        while not self._queue.empty():
            call_id, payload, at = self._queue.get_nowait()
            try:
                seq = await asyncio.to_thread(self.repo.append_late, call_id, payload, at)
            except Exception as exc:  # the record keeps what was written; this is logged
                self.log.error("late_event_lost", call_id=call_id, event=payload,
                               error=repr(exc))
                continue
            self.bus.publish({**payload, "call_id": call_id, "seq": seq,
                              "at": at.isoformat()})

    async def aclose(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await asyncio.shield(self._writer)
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)


def callback_request(request: RouteRequest) -> RouteRequest:
    """A callback task's routing request: the call's, without an agent's transfer."""
    return request.model_copy(update={"transfer_to": None, "transferred_by": None})


DialNumber = Callable[[str, str, str], Coroutine[Any, Any, Any]]


class CallbackLink(CallLink):
    """A callback task in routing: an answered offer starts the callback."""

    def __init__(self, live: LiveRouting, call_id: str, request: RouteRequest,
                 packet: HandoffPacket, emit: Callable[[CallEvent], Any], number: str,
                 dial_number: DialNumber | None, joined_at: datetime) -> None:
        super().__init__(call_id, request, packet.model_copy(update={"callback": True}), emit)
        self.live = live
        self.number = number
        self.dial_number = dial_number
        self.joined_at = joined_at

    def deliver(self, decision: Connected | Exited) -> None:
        if isinstance(decision, Connected):
            self.live.spawn(self._run(decision), f"callback-{self.call_id}")
        else:  # too old (``callback_expire_after_s``), or no route left
            outcome = "expired" if decision.reason == CALLBACK_EXPIRED else "not_routed"
            self.emit(CallbackDone(agent_id="", number=self.number, outcome=outcome))
            self.live.links.pop(self.call_id, None)

    async def _run(self, conn: Connected) -> None:
        live, agent = self.live, conn.agent_id
        waited_s = (live.now() - self.joined_at).total_seconds()
        self.emit(AgentConnected(agent_id=agent, device=conn.device,
                                 offer_id=conn.offer.id if conn.offer else "",
                                 waited_s=round(waited_s, 3)))
        control = _CallbackControl(agent, conn)
        live.talks[self.call_id] = control
        live.desk.send(agent, {"type": "callback_dialing", "call_id": self.call_id,
                               "number": self.number})
        started, outcome, talk_s = time.monotonic(), "failed", 0.0
        try:
            result = await (self.dial_number(self.call_id, self.number,
                                             self.request.hotline_number)
                            if self.dial_number else _no_dialer())
            if isinstance(result, Connected):
                outcome, started = "answered", time.monotonic()
                live.desk.send(agent, {"type": "callback_connected", "call_id": self.call_id})
                control.customer = result.leg
                try:
                    await bridge(conn.leg, result.leg)
                finally:
                    talk_s = round(time.monotonic() - started, 3)
                    await result.leg.close()
            else:
                outcome = str(getattr(result, "outcome", "failed"))
        finally:
            self.emit(CallbackDone(agent_id=agent, number=self.number, outcome=outcome,
                                   talk_s=talk_s))
            self.emit(AgentDisconnected(agent_id=agent, reason="callback_end", talk_s=talk_s))
            with contextlib.suppress(Exception):
                await conn.leg.close()
            live.talks.pop(self.call_id, None)
            live.desk.send(agent, {"type": "callback_result", "call_id": self.call_id,
                                   "outcome": outcome, "talk_s": talk_s})
            await live.call_ended(agent, self.call_id, talk_s,
                            conn.offer.group if conn.offer else None)
            live.links.pop(self.call_id, None)


async def _no_dialer() -> Any:
    from app.handoff.phones import DialFailure

    return DialFailure("failed", "no outbound leg")


class _CallbackControl:
    """The desk's hang-up during a callback (the only action there is)."""

    def __init__(self, agent_id: str, conn: Connected) -> None:
        self.agent_id = agent_id
        self.conn = conn
        self.customer: Any = None

    def agents(self) -> set[str]:
        return {self.agent_id}

    async def control(self, agent_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if action != "hangup":
            raise DeskError(409, f"a callback takes no {action!r}; hang up to end it")
        await self.conn.leg.close()
        if self.customer is not None:
            await self.customer.close()
        return {"state": "ended"}
