"""``HandoffService``: the human side of the process, wired once in ``build_services``.

It is the voice session's ``AgentHandoff`` (``serves``, ``wait_for_agent``, ``call_ending``:
one ``CallHandoff`` per call that asked for a human) and what the desk API reaches: the
``LiveRouting`` (presence, offers, the talks' actions), the ``DeskHub``, the agents'
callbacks and the record reads of the desk (packet history, today's calls).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.call.ports import EventPublisher
from app.chat.session import ChatSession
from app.flows.runtime import CallerInput, ResumeAt, Transfer
from app.handoff.adopt import adopt_callbacks
from app.handoff.callbacks import CallbackLink, LateLog, callback_request
from app.handoff.chat import ChatHandoff
from app.handoff.desk import DeskHub
from app.handoff.live import CallLink, LiveRouting
from app.handoff.packet import HandoffPacket
from app.handoff.phones import Phones
from app.handoff.wait import CallHandoff
from app.log import get_logger
from app.record import CallbackQueued
from app.routing.plan import RouteRequest
from app.storage.handoff_repo import HandoffRepository

if TYPE_CHECKING:
    from app.call.session import CallSession


class HandoffService:
    def __init__(self, live: LiveRouting, repo: HandoffRepository, bus: EventPublisher,
                 http: Any, phones: Phones, *, node_id: str = "node-1") -> None:
        """``node_id``: this node's (its calls' rows carry it; its callbacks are served
        here)."""
        self.live = live
        self.node_id = node_id
        self.adopted: set[str] = set()  # callbacks adopted here (served, or ended)
        self._adopting = asyncio.Lock()
        self.desk: DeskHub = live.desk
        self.repo = repo
        self.bus = bus
        self.http = http
        self.phones = phones
        self.late = LateLog(repo, bus)
        self.calls: dict[str, CallHandoff | ChatHandoff] = {}
        self.log = get_logger(component="handoff")

    # -- AgentHandoff (the voice session) ----------------------------------------------------
    def serves(self, hotline_number: str) -> bool:
        return self.live.service.routing.config.hotline(hotline_number) is not None

    async def wait_for_agent(self, call: CallSession | ChatSession, action: Transfer
                             ) -> CallerInput | ResumeAt | None:
        handoff = self.calls.get(call.info.call_id)
        if handoff is None:
            handoff = self.calls[call.info.call_id] = (
                ChatHandoff(call, self) if isinstance(call, ChatSession)
                else CallHandoff(call, self))
        return await handoff.wait(action)

    async def call_ending(self, call: CallSession | ChatSession) -> None:
        handoff = self.calls.pop(call.info.call_id, None)
        if handoff is not None:
            await handoff.close()

    # -- callbacks ------------------------------------------------------------------------------
    def callback_queued(self, link: CallLink, number: str, group: str | None,
                        joined_at: datetime) -> CallbackQueued:
        """The record's line for a queued callback: with what re-queues it elsewhere."""
        return CallbackQueued(number=number, group=group, joined_at=joined_at,
                              request=callback_request(link.request).model_dump(mode="json"))

    def _callback_link(self, link: CallLink, number: str, joined_at: datetime) -> CallbackLink:
        return self.callback_link(link.call_id, callback_request(link.request), link.packet,
                                  number, joined_at)

    def callback_link(self, call_id: str, request: RouteRequest, packet: HandoffPacket,
                      number: str, joined_at: datetime) -> CallbackLink:
        return CallbackLink(self.live, call_id, request, packet, self.late.emitter(call_id),
                            number, self.phones.dial_number, joined_at)

    async def adopt_callbacks(self) -> list[str]:
        """Serve this node's queued callbacks that are not served here (after a restart;
        a lost node's, once the leader's sweep gave them to this node)."""
        async with self._adopting:  # the start's and the sweep's: one at a time
            return await adopt_callbacks(self, self.node_id)

    async def nodes_lost(self, lost: dict[str, list[str]]) -> None:
        """The leader's sweep (``NodeLiveness.on_lost``): the lost nodes' calls leave the
        routing, and their queued callbacks, now this node's, are served here."""
        try:
            await self.live.release_lost(lost)
        finally:
            await self.adopt_callbacks()

    def keep_as_callback(self, handoff: CallHandoff, number: str) -> None:
        """The queued caller asked to be called back: their queue entry (and place) is now
        a callback task, served after the call ends."""
        assert handoff.link is not None
        joined_at = handoff.joined_at or self.live.now()
        self.live.links[handoff.call_id] = self._callback_link(handoff.link, number, joined_at)

    async def queue_callback(self, link: CallLink, number: str, joined_at: datetime) -> None:
        """The flow took a callback request (routing let the call go): a task, routed again,
        keeping the caller's first join time."""
        callback = self._callback_link(link, number, joined_at)
        try:
            await self.live.enqueue_callback(callback, number, joined_at)
        except ValueError as exc:  # routing refused it: the record says so
            self.log.error("callback_not_queued", call_id=link.call_id, error=repr(exc))

    # -- desk reads --------------------------------------------------------------------------
    async def today(self, agent_id: str) -> list[Any]:
        now = self.live.now()
        local = now.astimezone()
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return await asyncio.to_thread(self.repo.agent_calls, agent_id, start)

    async def aclose(self) -> None:
        await self.live.aclose()
        if self.live.bus is not None:  # several nodes: the routing bus and shared state
            await self.live.bus.aclose()
        await self.live.state.aclose()
        await self.late.aclose()
