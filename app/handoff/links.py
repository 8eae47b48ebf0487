"""What the live routing hands around: a call's ``CallLink`` (its request and packet, and
the decisions it waits for: ``Connected`` or ``Exited``), an offer ``Ringing`` on devices,
``DeskError`` (a desk request refused, with its HTTP status), ``NoAudio`` (a chat's desk leg)
and ``to_record`` (a routing event as the call's record keeps it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from app.call.media import CallMedia, EndReason
from app.events import AudioChunk, Dtmf
from app.handoff.packet import HandoffPacket
from app.record import (
    CallEvent,
    OfferEvent,
    OverflowEvent,
    QueueExitEvent,
    QueueJoinedEvent,
    QueueLeftEvent,
    RoutingDecided,
)
from app.routing.events import (
    ExitAction,
    OfferChanged,
    Overflowed,
    QueueExit,
    QueueJoined,
    QueueLeft,
    RoutingDecision,
    RoutingEvent,
)
from app.routing.plan import RouteRequest
from app.routing.queue import Offer


class DeskError(ValueError):
    """A desk request that cannot be done; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Connected:
    """An agent (or a dialled number) answered: ``leg`` is their audio."""

    agent_id: str  # "number:+86..." for a dialled number
    device: str
    leg: CallMedia
    offer: Offer | None = None
    answered_at: float = field(default_factory=time.monotonic)


@dataclass
class Exited:
    action: ExitAction
    number: str | None
    reason: str


Decision = Connected | Exited


class NoAudio:
    """The desk's side of a chat: typed text, no audio (a ``CallMedia`` that carries none)."""

    sample_rate_hz = 16000

    def __init__(self) -> None:
        self.end_reason: EndReason | None = None
        self._closed = asyncio.Event()

    async def inbound(self) -> AsyncIterator[AudioChunk | Dtmf]:
        await self._closed.wait()
        return
        yield  # an async generator that yields nothing

    async def play(self, chunk: AudioChunk) -> None:
        return None

    def flush(self) -> int:
        return 0

    async def close(self) -> None:
        self.end_reason = self.end_reason or "local_close"
        self._closed.set()

    def media_info(self) -> dict[str, Any]:
        return {"transport": "desk-text"}


class CallLink:
    """A call's place in the live routing: what it asked for, and what comes back."""

    def __init__(self, call_id: str, request: RouteRequest, packet: HandoffPacket,
                 emit: Callable[[CallEvent], Any]) -> None:
        self.call_id = call_id
        self.request = request
        self.packet = packet
        self.emit = emit
        self.decisions: asyncio.Queue[Decision] = asyncio.Queue()

    def deliver(self, decision: Decision) -> None:
        self.decisions.put_nowait(decision)


@dataclass
class Ringing:
    offer: Offer
    link: CallLink
    started: float
    devices: dict[str, str]  # address -> "ringing" or how it ended
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    web_leg: CallMedia | None = None
    drain: asyncio.Task[None] | None = None
    answered_by: str | None = None  # the device that took it


def to_record(event: RoutingEvent) -> CallEvent | None:
    """A call-scoped routing event as the call's record keeps it."""
    if isinstance(event, RoutingDecision):
        return RoutingDecided(rule=event.rule, source=event.source, target=event.target,
                              reason=event.reason, steps=event.steps)
    if isinstance(event, QueueJoined):
        return QueueJoinedEvent(group=event.group, position=event.position,
                                estimated_wait_s=event.estimated_wait_s,
                                priority=event.priority, callback=event.callback)
    if isinstance(event, QueueLeft):
        return QueueLeftEvent(group=event.group, reason=event.reason, waited_s=event.waited_s)
    if isinstance(event, Overflowed):
        return OverflowEvent(from_step=event.from_step, to_step=event.to_step,
                             reason=event.reason)
    if isinstance(event, QueueExit):
        return QueueExitEvent(action=event.action, number=event.number, reason=event.reason,
                              group=event.group)
    if isinstance(event, OfferChanged):
        return OfferEvent(offer_id=event.offer_id, agent_id=event.agent_id, group=event.group,
                          state=event.state, devices=event.devices,
                          ring_timeout_s=event.ring_timeout_s)
    return None
