"""``LiveRouting``: the routing service driven in real time, and the offers rung on devices.

It owns the process's ``RoutingService`` (presence, queues, offers: pure and synchronous) and
does what the service cannot: the clock (a timer runs ``tick``/``dispatch`` at the next
deadline), ringing (an offer rings the agent's desk over its WebSocket and/or dials their
phone through ``app.sip.uac.dial``; the first device to answer takes it, the others stop),
and delivery: each routing event goes to the call's record (``app.record`` types) and to the
desks, and the call's ``CallLink`` receives what it waits for — ``Connected`` (an agent
answered: here is their media leg) or ``Exited`` (routing let the call go: voicemail,
callback, a number to dial, no route).

Everything runs on the event loop; the service's state changes only here, each change one
``RoutingState`` operation (in process, or in Redis shared by several nodes: then
``remote.Remote`` carries events and desk actions between the nodes). The values it hands
around live in ``links``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from app.call.media import CallMedia
from app.events import utc_now
from app.handoff.desk import DeskHub
from app.handoff.links import (
    CallLink,
    Connected,
    Decision,
    DeskError,
    Exited,
    NoAudio,
    Ringing,
    to_record,
)
from app.handoff.remote import Remote
from app.log import get_logger
from app.metrics import ROUTING_STATE_FAILURES
from app.record import (
    CallError,
    RingEnded,
)
from app.routing.config import Device, Target
from app.routing.events import (
    AgentStateChanged,
    OfferChanged,
    QueueExit,
    RoutingEvent,
)
from app.routing.plan import RouteRequest
from app.routing.presence import AgentPresence, AwayReason, ChosenStatus, effective_state
from app.routing.queue import CALLBACK_EXPIRED, Announced, Offer, OfferError, QueueEntry
from app.routing.service import RoutingError, RoutingService, Ticket
from app.routing.shared import LocalState, RedisState, RoutingState, SharedStateError, Snapshot

if TYPE_CHECKING:
    from app.handoff.routing_bus import RoutingBus

__all__ = ["CallLink", "Connected", "Decision", "DeskError", "Exited", "LiveRouting", "NoAudio",
           "Ringing", "device_target", "to_record"]
T = TypeVar("T")

UNREACHABLE = "routing state unreachable"
MAX_SLEEP_S = 5.0  # also re-check calendars this often
DESK_GONE_GRACE_S = 10.0  # a reloaded desk page is back within this
_RING_OUTCOME = {"timed_out": "no_answer", "rejected": "declined", "busy": "busy",
                 "cancelled": "cancelled", "accepted": "cancelled"}


class LiveRouting:
    def __init__(self, service: RoutingService, desk: DeskHub, *,
                 clock: Callable[[], datetime] = utc_now,
                 dial_device: Callable[..., Coroutine[Any, Any, Any]] | None = None,
                 accept_web: Callable[[str], Coroutine[Any, Any, tuple[Any, str]]] | None
                 = None, state: RoutingState | None = None,
                 bus: RoutingBus | None = None) -> None:
        """``dial_device(ringing, device)`` rings a phone (``app.handoff.phones``);
        ``accept_web(sdp)`` answers a desk's SDP offer with a media leg; ``state`` is
        where the routing state lives (``LocalState``, the default: in this process);
        ``bus`` (several nodes) carries routing events and desk actions between nodes."""
        self.service = service
        self.state: RoutingState = state or LocalState(service)
        self.desk = desk
        self.clock = clock
        self.dial_device = dial_device
        self.accept_web = accept_web
        self.links: dict[str, CallLink] = {}
        self.ringing: dict[str, Ringing] = {}
        self.talks: dict[str, Any] = {}  # call_id -> its Talk (the desk's actions go there)
        self.log = get_logger(component="routing")
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gone: dict[str, asyncio.TimerHandle] = {}
        self._closing = False
        self.bus = bus
        service._publish = self._publish
        desk.on_last_gone = self._desk_gone
        self.remote = Remote(self, bus) if bus is not None else None
        # a supervisor's request forwarded by another node (set by the supervision API)
        self.on_supervise: Callable[[str, dict[str, Any]], Awaitable[Any]] | None = None
        if isinstance(self.state, RedisState):
            self.state.on_reset = self._state_reset

    def now(self) -> datetime:
        return self.clock()

    async def _run(self, op: Callable[[RoutingService], T]) -> T:
        """One routing operation on the live state (in process: a plain call; shared:
        ``SharedStateError`` when Redis is unreachable, nothing changed)."""
        return await self.state.run(op)

    def unreachable(self, op: str, exc: SharedStateError, **ids: str) -> None:
        """A routing operation the shared state could not take: counted and logged."""
        ROUTING_STATE_FAILURES.labels(op=op).inc()
        self.log.error("routing_state_unreachable", op=op, error=str(exc)[:300], **ids)

    def _desk_unreachable(self, op: str, exc: SharedStateError, agent_id: str) -> DeskError:
        self.unreachable(op, exc, agent_id=agent_id)
        return DeskError(503, f"{UNREACHABLE}: try again in a moment")

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._timer = asyncio.create_task(self._run_timer(), name="routing-timer")

    async def aclose(self) -> None:
        self._closing = True
        for handle in self._gone.values():
            handle.cancel()
        self._gone.clear()
        for ring in list(self.ringing.values()):
            ring.cancel.set()
            await self._close_web(ring)
        tasks = [t for t in (self._timer, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("routing_task_failed", task=task.get_name(),
                           error=repr(task.exception()))

    async def _run_timer(self) -> None:
        while not self._closing:  # redis-py may turn a cancellation into a ConnectionError
            now = self.now()
            deadline = self.service.next_deadline(now)
            sleep_s = MAX_SLEEP_S if deadline is None else min(
                MAX_SLEEP_S, (deadline - now).total_seconds())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.005, sleep_s)):
                    await self._wake.wait()
            self._wake.clear()
            try:
                now = self.now()
                offers = await self._run(functools.partial(_tick_and_dispatch, now=now))
                for offer in offers:
                    if self.bus is None or offer.call_id in self.links:
                        await self._ring(offer)
            except (RoutingError, OfferError, SharedStateError) as exc:  # never stop the timer
                self.log.error("routing_tick_failed", error=repr(exc))

    async def changed(self) -> None:
        """Something changed: offer now what can be offered, and recompute the timer."""
        await self.dispatch()
        self._wake.set()

    async def dispatch(self) -> None:
        """Offer what can be offered now (the shared state unreachable: the timer tries
        again at its next tick)."""
        now = self.now()
        try:
            offers = await self._run(lambda s: s.dispatch(now))
        except SharedStateError as exc:
            self.unreachable("dispatch", exc)
            return
        for offer in offers:
            if self.bus is None or offer.call_id in self.links:
                await self._ring(offer)  # else the node that holds the call rings it

    # -- events ------------------------------------------------------------------------------
    def _publish(self, event: RoutingEvent) -> None:
        """An event of a routing change made on this node (after its commit)."""
        self._handle(event)
        if self.bus is not None:
            self.bus.events([event.model_dump(mode="json")])

    def _handle(self, event: RoutingEvent) -> None:
        if isinstance(event, AgentStateChanged):  # every node shows it on its own desks
            self.desk.send_local(event.agent_id, {"type": "agent_state",
                                                  **event.model_dump(mode="json")})
            return
        link = self.links.get(event.call_id)
        if isinstance(event, OfferChanged) and event.state != "pending":
            self._offer_ended(event)
        record = to_record(event)
        if link is None or record is None:
            return
        link.emit(record)
        if isinstance(event, QueueExit):
            link.deliver(Exited(event.action, event.number, event.reason))

    def _offer_ended(self, event: OfferChanged) -> None:
        ring = self.ringing.pop(event.offer_id, None)
        if ring is None:
            return
        ring.cancel.set()
        elapsed = round(time.monotonic() - ring.started, 3)
        for device, status in ring.devices.items():
            if status != "ringing":
                continue
            outcome = "answered" if device == ring.answered_by else _RING_OUTCOME.get(
                event.state, event.state)
            ring.devices[device] = outcome
            ring.link.emit(RingEnded(agent_id=ring.offer.agent_id, device=device,
                                     outcome=outcome, ring_s=elapsed))
        if "web" in ring.devices:
            self.desk.send(ring.offer.agent_id, {
                "type": "offer_ended", "offer_id": event.offer_id, "call_id": event.call_id,
                "state": event.state, "answered_by": ring.answered_by})
        if event.state != "accepted":
            self.desk.unwatch(ring.offer.agent_id, event.call_id)
        if ring.answered_by != "web":
            self.spawn(self._close_web(ring), f"close-web-{event.offer_id}")

    async def _close_web(self, ring: Ringing) -> None:
        leg, drain = ring.web_leg, ring.drain
        ring.web_leg = ring.drain = None
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        if leg is not None:
            await leg.close()

    async def refresh(self) -> None:
        """Several nodes: bring this node's copy of the routing state up to date before a
        read that a person looks at (the monitor, a desk's own state). Without it a read
        sees the copy of this node's last transaction (its timer runs one at least every
        ``MAX_SLEEP_S``). Redis unreachable: the read shows the last copy (logged)."""
        try:
            await self.state.refresh()
        except SharedStateError as exc:
            self.unreachable("refresh", exc)

    def _state_reset(self, before: Snapshot) -> None:
        """The shared state came back empty (Redis restarted): rebuild what this node holds."""
        if not self._closing:
            self.spawn(self._rebuild(before), "routing-rebuild")

    async def _rebuild(self, before: Snapshot) -> None:
        """Put back the agents whose desks are connected here or who are on a call held
        here, and the callers waiting here, as this node last saw them (their old order and
        join times; ``RoutingService.restore``)."""
        talking = {agent for talk in self.talks.values() for agent in talk.agents()}
        presences = [p for agent, p in before.presence.items()
                     if self.desk.connected(agent) or agent in talking
                     or any(call_id in self.links for call_id in p.calls)]
        entries = [e for call_id, e in before.queue.items() if call_id in self.links]
        try:
            agents, calls = await self._run(lambda s: s.restore(presences, entries))
        except SharedStateError as exc:  # not retried: agents sign in again, callers
            self.unreachable("rebuild", exc)  # take the no-agent path at their max wait
            return
        self.log.warning("routing_state_rebuilt", agents=agents, call_ids=calls)
        await self.changed()

    # -- agents ------------------------------------------------------------------------------
    def agent_ids(self) -> frozenset[str]:
        return frozenset(self.service.routing.agents)

    def presence(self, agent_id: str) -> AgentPresence:
        return self.service.presence.get(agent_id) or AgentPresence(agent_id)

    def state_of(self, agent_id: str) -> dict[str, Any]:
        p = self.presence(agent_id)
        return {"agent_id": agent_id, "state": effective_state(p, self.now()),
                "chosen": p.chosen, "away_reason": p.away_reason, "system": p.system,
                "calls": list(p.calls), "wrap_up_until": p.wrap_up_until}

    async def set_status(self, agent_id: str, chosen: ChosenStatus, reason: AwayReason | None
                         ) -> AgentPresence:
        if agent_id not in self.service.routing.agents:
            raise DeskError(404, f"no agent {agent_id!r} in the routing")
        handle = self._gone.pop(agent_id, None)
        if handle is not None:
            handle.cancel()
        now = self.now()
        try:
            presence = await self._run(lambda s: s.set_status(agent_id, chosen, now, reason))
        except SharedStateError as exc:
            raise self._desk_unreachable("set_status", exc, agent_id) from exc
        except ValueError as exc:
            raise DeskError(400, str(exc)) from exc
        await self.changed()
        return presence

    async def force_status(self, agent_id: str, chosen: ChosenStatus,
                           reason: AwayReason | None, by: str
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A supervisor sets the agent's status: (state before, state after). An agent who
        is ringing or on a call cannot be forced offline (409): the call goes on, and
        ``away`` is the way to stop new offers meanwhile."""
        if agent_id not in self.service.routing.agents:
            raise DeskError(404, f"no agent {agent_id!r} in the routing")
        before = self.state_of(agent_id)
        if chosen == "offline" and before["state"] in ("ringing", "on_call"):
            raise DeskError(409, f"agent {agent_id!r} is {before['state']}: not forced "
                            "offline mid-call (set away to stop new offers)")
        now = self.now()
        try:
            await self._run(lambda s: s.set_status(agent_id, chosen, now, reason, forced_by=by))
        except SharedStateError as exc:
            raise self._desk_unreachable("force_status", exc, agent_id) from exc
        except ValueError as exc:
            raise DeskError(422, str(exc)) from exc
        await self.changed()
        return before, self.state_of(agent_id)

    async def end_wrap_up(self, agent_id: str) -> None:
        now = self.now()
        try:
            await self._run(lambda s: s.end_wrap_up(agent_id, now))
        except SharedStateError as exc:
            raise self._desk_unreachable("end_wrap_up", exc, agent_id) from exc
        except ValueError as exc:
            raise DeskError(409, str(exc)) from exc
        await self.changed()

    def desk_back(self, agent_id: str) -> None:
        handle = self._gone.pop(agent_id, None)
        if handle is not None:
            handle.cancel()

    def _desk_gone(self, agent_id: str) -> None:
        """The agent's last desk closed: after a grace, an agent who answers only at the
        desk goes offline (a phone-bound agent stays available for their phone)."""
        agent = self.service.routing.agents.get(agent_id)
        if agent is None or any(d.kind != "web" for d in agent.devices):
            return
        loop = asyncio.get_running_loop()
        self._gone[agent_id] = loop.call_later(
            DESK_GONE_GRACE_S, lambda: self.spawn(self._logout_gone(agent_id),
                                                  f"desk-gone-{agent_id}"))

    async def _logout_gone(self, agent_id: str) -> None:
        self._gone.pop(agent_id, None)
        if self.desk.connected(agent_id) or self.presence(agent_id).calls:
            return
        now = self.now()
        try:
            await self._run(lambda s: s.set_status(agent_id, "offline", now))
        except SharedStateError as exc:
            self.unreachable("desk_gone", exc, agent_id=agent_id)
        except ValueError:
            pass
        await self.changed()

    async def call_ended(self, agent_id: str, call_id: str, talk_s: float, group: str | None
                         ) -> None:
        """The agent's part of a call is over: wrap-up starts."""
        self.desk.unwatch(agent_id, call_id)
        if agent_id in self.service.routing.agents:
            now = self.now()
            try:
                await self._run(lambda s: s.call_ended(agent_id, call_id, talk_s, now,
                                                       group=group))
            except SharedStateError as exc:  # stays on_call in Redis (shared-routing.md)
                self.unreachable("call_ended", exc, call_id=call_id, agent_id=agent_id)
            except ValueError:
                pass
        await self.changed()

    # -- calls -------------------------------------------------------------------------------
    async def enqueue(self, link: CallLink, *, joined_at: datetime | None = None,
                      front: bool = False) -> Ticket:
        """Route the call. The shared state unreachable: the call leaves routing at once
        (``Exited`` no_route: the flow's queue-timeout path), counted and logged."""
        self.links[link.call_id] = link
        now = self.now()
        try:
            ticket = await self._run(lambda s: s.enqueue(link.request, now,
                                                         joined_at=joined_at, front=front))
        except SharedStateError as exc:
            return self._not_routed("enqueue", link, exc, now)
        await self.changed()
        return ticket

    async def enqueue_callback(self, link: CallLink, number: str, joined_at: datetime
                               ) -> Ticket:
        """A callback task; the shared state unreachable: ``ValueError`` (not queued)."""
        self.links[link.call_id] = link
        now = self.now()
        try:
            ticket = await self._run(lambda s: s.enqueue_callback(link.request, number,
                                                                  joined_at, now))
        except SharedStateError as exc:
            self.links.pop(link.call_id, None)
            self.unreachable("enqueue_callback", exc, call_id=link.call_id)
            raise ValueError(f"{UNREACHABLE}: {exc}") from exc
        await self.changed()
        return ticket

    async def adopt_callback(self, call_id: str, make: Callable[[RouteRequest, str, datetime],
                                                                CallLink],
                             request: RouteRequest, number: str, joined_at: datetime,
                             group: str | None) -> str:
        """A callback task this node now serves (its node was lost, or this node restarted).
        Still in the (shared) queue: its link (``make(request, number, joined_at)``, from the
        entry) is kept here and its pending offers, reserved but rung by no node, ring now
        ("linked"); not queued: queued again with the caller's ``joined_at`` ("queued");
        past its group's ``callback_expire_after_s``: it leaves routing and ends expired
        ("expired"). ``ValueError``: the shared state unreachable (nothing done)."""
        try:
            await self.state.refresh()
        except SharedStateError as exc:
            self.unreachable("adopt_callback", exc, call_id=call_id)
            raise ValueError(f"{UNREACHABLE}: {exc}") from exc
        entry = self.entry(call_id)
        if entry is not None and entry.callback:
            request, joined_at, group = entry.request, entry.joined_at, entry.group
            number = entry.callback_number or number
        link = make(request, number, joined_at)
        if self.service.callback_expired(group, joined_at, self.now()):
            if entry is not None:
                await self.leave(call_id, "cancelled")
            link.deliver(Exited("no_route", None, CALLBACK_EXPIRED))
            return "expired"
        if entry is None or not entry.callback:
            await self.enqueue_callback(link, number, joined_at)
            return "queued"
        self.links[call_id] = link
        await self.changed()
        for offer in list(self.service.offers.pending()):  # reserved, rung by no node
            if offer.call_id == call_id and offer.id not in self.ringing:
                await self._ring(offer)
        return "linked"

    def _not_routed(self, op: str, link: CallLink, exc: SharedStateError, now: datetime
                    ) -> Ticket:
        self.unreachable(op, exc, call_id=link.call_id)
        link.emit(CallError(reason="routing_state_unreachable", detail=str(exc)[:300],
                            where="routing"))
        link.deliver(Exited("no_route", None, UNREACHABLE))
        plan = self.service.plan(link.request, now).model_copy(update={
            "source": "none", "target": None, "steps": [], "reason": UNREACHABLE})
        return Ticket(call_id=link.call_id, plan=plan, status="exit", action="no_route")

    async def leave(self, call_id: str, reason: str = "abandoned") -> None:
        """The call leaves routing (hung up, or back to the bot); its offers stop ringing.
        The shared state unreachable: logged; the entry stays there until its max wait (an
        offer for it then finds no node holding the call and ends busy)."""
        now = self.now()
        try:
            await self._run(lambda s: s.leave(call_id, now, reason))  # type: ignore[arg-type]
        except SharedStateError as exc:
            self.unreachable("leave", exc, call_id=call_id)
            return
        await self.changed()

    async def forget(self, call_id: str) -> None:
        # Several nodes: this node's copy may be behind; leaving twice is harmless.
        if self.state.shared or self.service.queues.get(call_id) is not None:
            await self.leave(call_id)
        self.links.pop(call_id, None)

    async def release_lost(self, lost: dict[str, list[str]]) -> None:
        """The leader's sweep finalized these calls of lost nodes ({node: call ids}): they
        leave the shared routing state (queue entries, their offers; agents on them are
        free again). One node (``LocalState``): nothing of another node's is here."""
        call_ids = [call_id for calls in lost.values() for call_id in calls]
        if not call_ids or not self.state.shared:
            return
        now = self.now()
        try:
            left, freed = await self._run(lambda s: s.release_calls(call_ids, now))
        except SharedStateError as exc:
            self.unreachable("release_lost", exc)
            raise
        self.log.warning("lost_node_routing_released", lost_nodes=sorted(lost),
                         queued_calls=left, agents=freed)
        await self.changed()

    def position(self, call_id: str) -> tuple[int, float | None]:
        return self.service.position(call_id, self.now())

    def entry(self, call_id: str) -> QueueEntry | None:
        """The call's queue entry as this node last saw it (None: not queued)."""
        return self.service.queues.get(call_id)

    async def announcement(self, call_id: str) -> Announced | None:
        """Position and wait to tell the caller now, only when they improved."""
        now = self.now()
        try:
            return await self._run(lambda s: s.announcement(call_id, now))
        except SharedStateError as exc:  # nothing said this time
            self.unreachable("announcement", exc, call_id=call_id)
            return None

    async def callback_due(self, call_id: str) -> bool:
        now = self.now()
        try:
            return await self._run(lambda s: s.callback_due(call_id, now))
        except SharedStateError as exc:  # asked again at the next check
            self.unreachable("callback_due", exc, call_id=call_id)
            return False

    async def request_callback(self, call_id: str, number: str) -> QueueEntry:
        now = self.now()
        return await self._run(lambda s: s.request_callback(call_id, number, now))

    # -- ringing -----------------------------------------------------------------------------
    async def _ring(self, offer: Offer) -> None:
        if offer.id in self.ringing:  # already rung here (an event and a catch-up both)
            return
        link = self.links.get(offer.call_id)
        agent = self.service.routing.agents.get(offer.agent_id)
        if link is None or agent is None:
            now = self.now()
            try:
                await self._run(lambda s: s.device_busy(offer.id, now))
            except SharedStateError as exc:  # the offer ends at its ring timeout
                self.unreachable("device_busy", exc, call_id=offer.call_id)
            return
        ring = Ringing(offer, link, time.monotonic(), {d.address: "ringing"
                                                        for d in agent.devices})
        self.ringing[offer.id] = ring
        ring_s = max(0.0, (offer.expires_at - self.now()).total_seconds())
        chat = link.packet.channel == "chat"
        for device in agent.devices:
            if chat and device.kind != "web":  # typed at the desk: a phone cannot take it
                await self.device_failed(ring, device.address, "failed",
                                         "a chat is answered at the desk")
            elif device.kind == "web":
                self.desk.watch(offer.agent_id, offer.call_id)
                self.desk.send(offer.agent_id, {
                    "type": "offer", "offer_id": offer.id, "call_id": offer.call_id,
                    "group": offer.group, "ring_timeout_s": ring_s,
                    "packet": link.packet.model_dump(mode="json")})
            elif self.dial_device is not None:
                self.spawn(self.dial_device(self, ring, device), f"dial-{offer.id}")
            else:
                await self.device_failed(ring, device.address, "failed", "SIP is off")

    async def device_failed(self, ring: Ringing, address: str, outcome: str, detail: str) -> None:
        """One device of an offer did not answer; the offer ends when none is left."""
        if ring.devices.get(address) != "ringing" or self.ringing.get(ring.offer.id) is not ring:
            return
        ring.devices[address] = outcome
        ring.link.emit(RingEnded(agent_id=ring.offer.agent_id, device=address,
                                 outcome=outcome, ring_s=round(time.monotonic() - ring.started,
                                                               3), detail=detail[:200]))
        if any(s == "ringing" for s in ring.devices.values()):
            return
        now, offer_id = self.now(), ring.offer.id
        try:
            if outcome == "declined":
                await self._run(lambda s: s.reject(offer_id, now))
            elif outcome == "no_answer":
                await self._run(lambda s: s.no_answer(offer_id, now))
            else:
                await self._run(lambda s: s.device_busy(offer_id, now))
        except SharedStateError as exc:  # the offer ends at its ring timeout
            self.unreachable("offer_end", exc, call_id=ring.offer.call_id)
        except (RoutingError, OfferError):
            pass
        await self.changed()

    async def answered(self, ring: Ringing, device: str, leg: CallMedia) -> bool:
        """``device`` of ``ring`` answered with ``leg``: the call is theirs (True), or the
        offer had ended meanwhile (False: the caller closes ``leg``)."""
        if self.ringing.get(ring.offer.id) is not ring:
            return False
        ring.answered_by = device
        now, offer_id = self.now(), ring.offer.id
        try:
            await self._run(lambda s: s.accept(offer_id, now))
        except SharedStateError as exc:
            self.unreachable("accept", exc, call_id=ring.offer.call_id)
            ring.answered_by = None
            return False
        except (RoutingError, OfferError):
            ring.answered_by = None
            return False
        ring.link.deliver(Connected(ring.offer.agent_id, device, leg, ring.offer))
        await self.changed()
        return True

    # -- the desk's side of an offer -----------------------------------------------------------
    def _ring_of(self, agent_id: str, offer_id: str) -> Ringing:
        ring = self.ringing.get(offer_id)
        if ring is None or ring.offer.agent_id != agent_id:
            raise DeskError(409, f"offer {offer_id} is not ringing for {agent_id} (it was "
                            "answered elsewhere, timed out, or the caller hung up)")
        if "web" not in ring.devices:
            raise DeskError(409, f"offer {offer_id} rings {agent_id}'s phone, not the desk")
        return ring

    def _offer_node(self, offer_id: str) -> str | None:
        return self.remote.offer_node(offer_id) if self.remote is not None else None

    async def _forward(self, node: str, method: str, args: dict[str, Any]) -> Any:
        assert self.remote is not None
        return await self.remote.forward(node, method, args)

    async def prepare_web(self, agent_id: str, offer_id: str, sdp: str, *,
                          forward: bool = True) -> str:
        """Connect the desk's audio while it rings (the answer is then instant)."""
        node = self._offer_node(offer_id) if forward else None
        if node is not None:
            return str(await self._forward(node, "prepare_web", {
                "agent_id": agent_id, "offer_id": offer_id, "sdp": sdp}))
        ring = self._ring_of(agent_id, offer_id)
        if ring.link.packet.channel == "chat":
            raise DeskError(400, f"offer {offer_id} is a chat: it has no audio")
        if ring.web_leg is not None:
            raise DeskError(409, f"offer {offer_id} has its desk audio already")
        if self.accept_web is None:
            raise DeskError(503, "desk audio is not available")
        leg, answer = await self.accept_web(sdp)
        if self.ringing.get(offer_id) is not ring:
            await leg.close()
            raise DeskError(409, f"offer {offer_id} ended while its audio was set up")
        ring.web_leg = leg
        ring.drain = asyncio.create_task(self._drain(ring, leg), name=f"desk-drain-{offer_id}")
        return answer

    async def _drain(self, ring: Ringing, leg: CallMedia) -> None:
        """Drop the desk's audio until the agent answers; a desk that hangs up declines."""
        async for _ in leg.inbound():
            pass
        if self.ringing.get(ring.offer.id) is ring and ring.answered_by is None:
            ring.drain = None
            await self.device_failed(ring, "web", "declined",
                                     f"desk audio ended ({leg.end_reason})")

    async def answer_web(self, agent_id: str, offer_id: str, sdp: str | None, *,
                         forward: bool = True) -> str | None:
        node = self._offer_node(offer_id) if forward else None
        if node is not None:
            answer = await self._forward(node, "answer_web", {
                "agent_id": agent_id, "offer_id": offer_id, "sdp": sdp})
            return None if answer is None else str(answer)
        ring = self._ring_of(agent_id, offer_id)
        if ring.link.packet.channel == "chat":  # answered by typing: no audio to connect
            if sdp:
                raise DeskError(400, f"offer {offer_id} is a chat: it has no audio (answer "
                                "without an SDP offer)")
            if not await self.answered(ring, "web", NoAudio()):
                raise DeskError(409, f"offer {offer_id} ended before it was answered")
            return None
        answer = await self.prepare_web(agent_id, offer_id, sdp, forward=False) if sdp \
            else None
        leg, drain = ring.web_leg, ring.drain
        if leg is None:
            raise DeskError(409, f"offer {offer_id}: send the desk's SDP offer first "
                            "(or with the answer)")
        ring.web_leg = ring.drain = None
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        if not await self.answered(ring, "web", leg):
            await leg.close()
            raise DeskError(409, f"offer {offer_id} ended before it was answered")
        return answer

    async def decline(self, agent_id: str, offer_id: str, *, forward: bool = True) -> None:
        node = self._offer_node(offer_id) if forward else None
        if node is not None:
            await self._forward(node, "decline", {"agent_id": agent_id, "offer_id": offer_id})
            return
        ring = self._ring_of(agent_id, offer_id)
        await self.device_failed(ring, "web", "declined", "declined at the desk")

    async def control(self, agent_id: str, call_id: str, action: str, body: dict[str, Any],
                      *, forward: bool = True) -> dict[str, Any]:
        """A desk action on a call with an agent (hold, mute, hang up, transfer, warm
        transfer's complete/cancel, hand-back to the bot, a chat message): done by the
        call's ``Talk`` here, or forwarded to the node holding the call (several nodes)."""
        node = await self.remote.held_by(call_id) if forward and self.remote is not None \
            else None
        if node is None:
            result: dict[str, Any] = await self.talk(agent_id, call_id).control(
                agent_id, action, body)
            return result
        wire = dict(body)
        if isinstance(wire.get("target"), Target):
            wire["target"] = wire["target"].model_dump(mode="json")
        return dict(await self._forward(node, "control", {
            "agent_id": agent_id, "call_id": call_id, "action": action, "body": wire}))

    def talk(self, agent_id: str, call_id: str) -> Any:
        talk = self.talks.get(call_id)
        if talk is None or agent_id not in talk.agents():
            raise DeskError(409, f"{agent_id} is not on call {call_id}")
        return talk


def _tick_and_dispatch(service: RoutingService, now: datetime) -> list[Offer]:
    service.tick(now)
    return service.dispatch(now)


def device_target(device: Device) -> tuple[str, str | None]:
    """(what to dial, trunk) of a phone device."""
    return (device.uri or device.number or ""), device.trunk
