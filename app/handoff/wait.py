"""One call's way to a human: the packet, the queue, hold audio, the agents it talks to.

``CallHandoff.wait(action)`` is what the voice session's ``wait_for_agent`` does when the
routing knows the hotline: build the handoff packet and the routing request (asking the
hotline's CRM webhook, if any), join the routing, and while the call waits play hold audio,
announce position and estimated wait only when they improved (at most every
``queue_position_every_s``), and offer to keep the caller's place for a callback when the
wait passes the group's threshold. Then, by what routing delivers:

- ``Connected``: ``Talk`` (caller and agent bridged) until the agent's part ends: the agent
  hung up (the call ends), dropped (the caller is told and requeued at the front), blind
  transferred (requeued towards the target, packet passed on), completed a warm transfer
  (the target talks on), or handed the caller back to the bot at a flow node (the agent
  waits on the line; the bot's next transfer brings the caller straight back to them, with
  what it collected).
- ``Exited``: a number to dial (rung while the caller hears hold audio; no answer or busy:
  back to the bot), else the flow's queue-timeout offer (callback or voicemail), as before.

Returns what the conversation does next: a ``queue_timeout`` input for the flow, a
``ResumeAt`` (hand-back), or None (the call is over; ``outcome`` says how).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from app.call.media import CallMedia
from app.events import Dtmf
from app.flows.runtime import CallerInput, ResumeAt, Transfer
from app.handoff.live import CallLink, Connected, Exited, LiveRouting
from app.handoff.packet import ask_crm, build_packet, route_request
from app.handoff.talk import Talk, TalkEnd
from app.media.hold import HoldMusic
from app.record import (
    AgentTransfer,
    AnnouncedPosition,
    CallbackOffered,
    CallError,
    HandBack,
    HandoffRequested,
    QueueTimeout,
)
from app.routing.config import Target
from app.routing.shared import SharedStateError
from app.storage.handoff_repo import HandoffRepository, PreviousCall

if TYPE_CHECKING:
    from app.call.session import CallSession
    from app.handoff.service import HandoffService

CHECK_EVERY_S = 1.0
LET_GO_S = 0.02  # how long a decision waits for the hold audio to stop
_CALLBACK_KEPT = object()
_CALLER_GONE = object()  # the caller's leg ended while on hold


@dataclass
class Parked:
    """An agent who handed the caller back to the bot, waiting on the line."""

    agent_id: str
    device: str
    leg: CallMedia
    group: str | None
    node: str
    slots_before: dict[str, str]
    path_before: int
    drain: asyncio.Task[None]


class CallHandoff:
    def __init__(self, call: CallSession, owner: HandoffService) -> None:
        self.call = call
        self.owner = owner
        self.live: LiveRouting = owner.live
        self.repo: HandoffRepository = owner.repo
        self.link: CallLink | None = None
        self.joined_at: datetime | None = None
        self.parked: Parked | None = None
        self.callback_kept = False
        self._previous: list[PreviousCall] | None = None
        self._pending_transfer: tuple[str, Target] | None = None
        self._talk_agent = ""
        self._stragglers: set[asyncio.Task[Any]] = set()

    @property
    def call_id(self) -> str:
        return self.call.info.call_id

    # -- the conversation's side ----------------------------------------------------------
    async def wait(self, action: Transfer) -> CallerInput | ResumeAt | None:
        try:
            if self.parked is not None:
                conn = await self._return_from_bot()
                if conn is not None:
                    return await self._serve(conn)
            await self._prepare(action)
            assert self.link is not None
            self.joined_at = self.joined_at or self.live.now()
            await self.live.enqueue(self.link, joined_at=self.joined_at)
            return await self._serve(None)
        finally:
            if not self.callback_kept:
                await self.live.forget(self.call_id)

    async def _prepare(self, action: Transfer) -> None:
        if self._previous is None:
            self._previous = await asyncio.to_thread(
                self.repo.previous_calls, self.call.info.caller_number, self.call_id)
        self.link = await link_for(self.call, self.owner, action, self._previous)

    async def _serve(self, conn: Connected | None) -> CallerInput | ResumeAt | None:
        assert self.link is not None
        while True:
            if conn is None:
                decision = await self._hold_until_decision()
                if decision is _CALLBACK_KEPT or decision is _CALLER_GONE:
                    return None
                if isinstance(decision, Exited):
                    conn = await self._exit(decision)
                    if conn is None:
                        return self._back_to_bot(decision)
                else:
                    assert isinstance(decision, Connected)
                    conn = decision
            self._transfer_outcome("completed", conn.agent_id)
            end = await self._talk(conn)
            conn = None
            if end.reason == "warm_done":
                conn = end.next
            elif end.reason == "agent_hangup":
                self.call.conversation.outcome = "agent_handled"
                return None
            elif end.reason == "agent_dropped":
                await self._say("agent_lost")
                await self.live.enqueue(self.link, joined_at=self.joined_at, front=True)
            elif end.reason == "transfer" and end.target is not None:
                self._pending_transfer = (self._talk_agent, end.target)
                await self._say("transfer_wait")
                self._retarget(end.target, end.note, self._talk_agent)
                await self.live.enqueue(self.link, joined_at=self.joined_at, front=True)
            elif end.reason == "handback" and end.leg is not None and end.node:
                return self._park(end)

    async def _talk(self, conn: Connected) -> TalkEnd:
        assert self.link is not None
        self._talk_agent = conn.agent_id
        waited_s = (self.live.now() - self.joined_at).total_seconds() if self.joined_at else 0.0
        talk = Talk(self.call, self.live, self.link, conn, waited_s=waited_s,
                    enqueue_transfer=self._warm_enqueue,
                    dial_number=self.owner.phones.dial_number)
        return await talk.run()

    def _retarget(self, target: Target, note: str, agent_id: str) -> None:
        assert self.link is not None
        link = self.link
        link.request = link.request.model_copy(update={"transfer_to": target,
                                                       "transferred_by": agent_id})
        link.packet = link.packet.model_copy(update={
            "transferred_by": agent_id, "note": (f"{note} ({agent_id})" if note else
                                                 link.packet.note)})

    async def _warm_enqueue(self, target: Target, note: str, agent_id: str) -> None:
        assert self.link is not None
        self._retarget(target, note, agent_id)
        await self.live.enqueue(self.link, joined_at=self.joined_at, front=True)

    def _transfer_outcome(self, outcome: str, detail: str) -> None:
        pending, self._pending_transfer = self._pending_transfer, None
        if pending is not None:
            agent_id, target = pending
            self.call.events.emit(AgentTransfer(
                agent_id=agent_id, mode="blind", target=target.describe(),
                outcome=outcome, detail=detail[:200]))  # type: ignore[arg-type]

    def _back_to_bot(self, exit_: Exited) -> CallerInput:
        """Routing let the call go: the flow's queue-timeout offer (callback, voicemail)."""
        self._transfer_outcome("failed", f"{exit_.action}: {exit_.reason}")
        waited_s = (self.live.now() - self.joined_at).total_seconds() if self.joined_at else 0
        queue = self.link.packet.queue if self.link else ""
        self.call.events.emit(QueueTimeout(queue=queue, waited_s=round(waited_s, 1)))
        return CallerInput(kind="queue_timeout", at=self.call.deps.clock())

    async def _exit(self, exit_: Exited) -> Connected | None:
        """A number to dial: rung while the caller hears hold audio (None: it failed)."""
        if exit_.action != "dial_number" or not exit_.number:
            return None
        ring = asyncio.create_task(self.owner.phones.dial_number(
            self.call_id, exit_.number, self.call.info.hotline_number))
        hold = asyncio.create_task(self._hold_loop(offer_callback=False))
        try:
            result = await ring
        finally:
            hold.cancel()
            await self._let_go(hold)
            self.call.media.flush()
        if isinstance(result, Connected):
            return result
        self.call.log.info("dial_number_failed", number=exit_.number, reason=str(result))
        return None

    # -- hand-back --------------------------------------------------------------------------
    def _park(self, end: TalkEnd) -> ResumeAt:
        assert end.leg is not None and end.node is not None
        state = self.call.state
        leg = end.leg
        self.parked = Parked(
            agent_id=self._talk_agent, device="", leg=leg, group=None, node=end.node,
            slots_before=dict(state.slots) if state else {},
            path_before=len(state.path) if state else 0,
            drain=asyncio.create_task(_drain(leg), name=f"parked-{self.call_id}"))
        self.call.events.emit(HandBack(agent_id=self._talk_agent, node=end.node,
                                       phase="started"))
        return ResumeAt(node=end.node)

    def _bot_result(self, parked: Parked) -> dict[str, Any]:
        """What the bot collected since the agent handed the caller over."""
        state = self.call.state
        if state is None:
            return {}
        changed = {k: v for k, v in state.slots.items() if parked.slots_before.get(k) != v}
        return {"slots": changed, "path": state.path[parked.path_before:],
                "intent": state.last_intent, "last_text": state.last_text,
                "outcome": state.outcome}

    async def _return_from_bot(self) -> Connected | None:
        """The bot hands the caller back: to the waiting agent, with what it collected."""
        parked, self.parked = self.parked, None
        assert parked is not None
        parked.drain.cancel()
        await asyncio.gather(parked.drain, return_exceptions=True)
        result = self._bot_result(parked)
        self.call.events.emit(HandBack(agent_id=parked.agent_id, node=parked.node,
                                       phase="returned", result=result))
        if parked.leg.end_reason is not None:  # they hung up meanwhile: route as usual
            await self.live.call_ended(parked.agent_id, self.call_id, 0.0, parked.group)
            return None
        return Connected(parked.agent_id, parked.device or "parked", parked.leg)

    # -- waiting ----------------------------------------------------------------------------
    async def _hold_until_decision(self) -> object:
        assert self.link is not None
        get = asyncio.create_task(self.link.decisions.get())
        hold = asyncio.create_task(self._hold_loop(offer_callback=True))
        try:
            done, _ = await asyncio.wait({get, hold}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (get, hold):
                task.cancel()
            await self._let_go(get, hold)
            self.call.media.flush()
        if get.done() and not get.cancelled():
            return get.result()
        if hold.done() and not hold.cancelled() and hold.exception() is None:
            return hold.result()
        raise RuntimeError("the wait ended without a decision")

    async def _let_go(self, *tasks: asyncio.Task[Any]) -> None:
        """Wait briefly for cancelled hold tasks: one inside a position announcement may
        take a while to unwind (its synthesis is in a worker); the caller must not wait for
        it. A straggler has played its last chunk already; ``close`` reaps it."""
        _, pending = await asyncio.wait(tasks, timeout=LET_GO_S)
        self._stragglers |= pending

    async def _hold_loop(self, offer_callback: bool) -> object:
        call = self.call
        hold = HoldMusic(call.media.sample_rate_hz)
        settings = call.deps.settings
        next_check, last_said = 0.0, -1e9
        offered = False
        while True:
            mono = time.monotonic()
            if mono >= next_check:
                next_check = mono + CHECK_EVERY_S
                if mono - last_said >= settings.queue_position_every_s and await self._announce():
                    last_said = time.monotonic()
                if offer_callback and not offered and self._callback_possible() and \
                        await self.live.callback_due(self.call_id):
                    offered = True
                    self._offer_callback()
                    await self._say("callback_offer")
                if offered and self._pressed("1") and await self._keep_place_for_callback():
                    return _CALLBACK_KEPT
            if call.media.end_reason is not None:  # a closed leg takes audio at once: no spin
                return _CALLER_GONE
            chunk = hold.next_chunk()
            if call.recorder is not None:
                call.recorder.bot(chunk)
            await call.media.play(chunk)

    async def _announce(self) -> bool:
        said = await self.live.announcement(self.call_id)
        entry = self.live.entry(self.call_id)
        if said is None or entry is None:
            return False
        text = self.call.system_text("queue_position").format(
            n=said.position, ahead=max(said.position - 1, 0))
        if said.wait_min is not None:
            text += self.call.system_text("queue_wait").format(minutes=said.wait_min)
        self.call.events.emit(AnnouncedPosition(group=entry.group or "",
                                                position=said.position,
                                                wait_min=said.wait_min))
        await self.call.player.say_quietly(text, self.call.locale)
        return True

    def _offer_callback(self) -> None:
        waited_s = (self.live.now() - self.joined_at).total_seconds() if self.joined_at else 0
        self.call.events.emit(CallbackOffered(group=self._group(), waited_s=round(waited_s, 1)))

    def _callback_possible(self) -> bool:
        number = self.call.info.caller_number
        return bool(number) and number != "anonymous" and any(c.isdigit() for c in number)

    def _pressed(self, digit: str) -> bool:
        """Whether the caller pressed ``digit`` (other input while on hold is dropped)."""
        inputs = self.call.listener.inputs
        found = False
        while not inputs.empty():
            item = inputs.get_nowait()
            found = found or (isinstance(item, Dtmf) and item.digit == digit)
        return found

    async def _keep_place_for_callback(self) -> bool:
        """The caller's place kept as a callback (False: the routing state could not take
        it now; they hold on and may press again)."""
        number = self.call.info.caller_number
        try:
            await self.live.request_callback(self.call_id, number)
        except SharedStateError as exc:
            self.live.unreachable("request_callback", exc, call_id=self.call_id)
            return False
        self.callback_kept = True
        self.owner.keep_as_callback(self, number)
        assert self.link is not None
        self.call.events.emit(self.owner.callback_queued(
            self.link, number, self._group(), self.joined_at or self.live.now()))
        await self._say("callback_kept", number=number)
        self.call.conversation.outcome = "callback_requested"
        return True

    def _group(self) -> str | None:
        entry = self.live.entry(self.call_id)
        return entry.group if entry else None

    async def _say(self, key: str, **values: str) -> None:
        text = self.call.system_text(key)
        if text:
            await self.call.player.say_quietly(text.format(**values), self.call.locale)

    # -- the end of the call ------------------------------------------------------------------
    async def close(self) -> None:
        """The call is ending: a parked agent gets the bot's result and is released; a
        callback the caller asked for is queued as a task (keeping their place)."""
        if self._stragglers:
            await asyncio.gather(*self._stragglers, return_exceptions=True)
            self._stragglers.clear()
        parked, self.parked = self.parked, None
        if parked is not None:
            self.call.events.emit(HandBack(agent_id=parked.agent_id, node=parked.node,
                                           phase="ended", result=self._bot_result(parked)))
            parked.drain.cancel()
            await asyncio.gather(parked.drain, return_exceptions=True)
            with contextlib.suppress(Exception):
                await parked.leg.close()
            await self.live.call_ended(parked.agent_id, self.call_id, 0.0, parked.group)
        if self.callback_kept:
            return
        state = self.call.state
        number = state.slots.get("callback_number") if state else None
        if self.call.outcome == "callback_requested" and number and self.link is not None:
            joined_at = self.joined_at or self.live.now()
            self.call.events.emit(self.owner.callback_queued(
                self.link, number, self.link.packet.queue, joined_at))
            await self.owner.queue_callback(self.link, number, joined_at)


async def _drain(leg: CallMedia) -> None:
    async for _ in leg.inbound():
        pass




async def link_for(call: Any, owner: HandoffService, action: Transfer,
                   previous: list[PreviousCall], channel: Literal["voice", "chat"] = "voice"
                   ) -> CallLink:
    """The routing link of a call (``CallSession``) or chat (``ChatSession``) that asked for
    a human: its handoff packet (with the hotline's CRM answer, if any) and route request."""
    call_id = call.info.call_id
    handoff = next((e for _, e in reversed(call.events.typed)
                    if isinstance(e, HandoffRequested)), None)
    if handoff is None:  # the conversation logs it first; never without it
        handoff = call.conversation.handoff_packet(action)
    state = call.state
    slots = dict(state.slots) if state else {}
    crm: dict[str, Any] = {}
    live = owner.live
    hotline = live.service.routing.config.hotline(call.info.hotline_number)
    if hotline is not None and hotline.crm is not None:
        crm, event, problem = await ask_crm(
            hotline.crm, owner.http, caller_number=call.info.caller_number,
            hotline_number=call.info.hotline_number, intent=handoff.intent, slots=slots)
        if event is not None:
            call.events.emit(event)
        if problem is not None:
            call.events.emit(CallError(reason="crm_unavailable", detail=problem[:300],
                                       where="crm"))
    packet = build_packet(handoff, call_id=call_id, hotline_number=call.info.hotline_number,
                          caller_number=call.info.caller_number, locale=call.locale,
                          state=state, typed=list(call.events.typed), previous=previous,
                          crm=crm, at=live.now(), channel=channel)
    request = route_request(packet, action, previous)
    return CallLink(call_id, request, packet, call.events.emit)
