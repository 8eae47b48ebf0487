"""A web chat's way to a human: the same routing, offers and desk as a call, typed.

``ChatHandoff.wait`` is what ``HandoffService.wait_for_agent`` does for a ``ChatSession``:
the same packet and routing request as a call (``link_for``, marked ``channel: chat``), the
same queue and offers (presence, ring timeout -> next candidate, max wait, overflow), while
the visitor sees their position and what they type is recorded for the agent. Routing's
exit (max wait, no route, a number to dial: a chat cannot be dialled) gives the flow its
queue-timeout offer, as before. An agent answers at the desk without audio (``NoAudio``).

``ChatTalk`` is the call's ``Talk`` for text: the agent's messages (the desk's ``message``
action) go to the chat, the visitor's messages go to the record as the caller's transcript
(the desk watching the call receives them), and the agent's ``hangup`` ends the chat; the
agent's wrap-up then starts as after a call.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.chat.protocol import TextIn, clean_text
from app.flows.runtime import CallerInput, Transfer
from app.handoff.live import CallLink, Connected, DeskError, Exited, LiveRouting
from app.handoff.talk import TalkEnd
from app.handoff.wait import link_for
from app.record import (
    AgentConnected,
    AgentDisconnected,
    AnnouncedPosition,
    QueueTimeout,
    TranscriptHeard,
)

if TYPE_CHECKING:
    from app.chat.session import ChatSession
    from app.handoff.service import HandoffService

CHECK_EVERY_S = 1.0


class ChatHandoff:
    def __init__(self, chat: ChatSession, owner: HandoffService) -> None:
        self.chat = chat
        self.owner = owner
        self.live: LiveRouting = owner.live
        self.link: CallLink | None = None
        self.joined_at: datetime | None = None

    @property
    def call_id(self) -> str:
        return self.chat.info.call_id

    async def wait(self, action: Transfer) -> CallerInput | None:
        chat = self.chat
        try:
            previous = await asyncio.to_thread(self.owner.repo.previous_calls,
                                               chat.info.caller_number, self.call_id)
            self.link = await link_for(chat, self.owner, action, previous, channel="chat")
            self.joined_at = self.live.now()
            await self.live.enqueue(self.link, joined_at=self.joined_at)
            while True:
                decision = await self._wait_decision()
                if isinstance(decision, Exited):
                    return self._back_to_bot(decision)
                end = await self._talk(decision)
                if end.reason == "agent_hangup":
                    chat.conversation.outcome = "agent_handled"
                    return None
                chat.show_notice("agent_lost")  # dropped: requeued at the front
                await self.live.enqueue(self.link, joined_at=self.joined_at, front=True)
        finally:
            await self.live.forget(self.call_id)

    async def _wait_decision(self) -> Connected | Exited:
        """The next decision; what the visitor types meanwhile is recorded for the agent,
        and their place is shown when it improved."""
        assert self.link is not None
        get = asyncio.ensure_future(self.link.decisions.get())
        typed: asyncio.Future[Any] | None = None
        last_check = -CHECK_EVERY_S
        try:
            while True:
                if time.monotonic() - last_check >= CHECK_EVERY_S:
                    last_check = time.monotonic()
                    await self._announce()
                if typed is None:
                    typed = asyncio.ensure_future(self.chat.inbox.get())
                done, _ = await asyncio.wait({get, typed}, timeout=CHECK_EVERY_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                if typed in done:
                    self._heard(typed.result().message)
                    typed = None
                if get in done:
                    return get.result()
        finally:
            pending = [f for f in (get, typed) if f is not None and not f.done()]
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _heard(self, message: Any) -> None:
        if isinstance(message, TextIn):
            self.chat.events.emit(TranscriptHeard(text=message.text, is_final=True,
                                                  speaker="caller"))

    async def _announce(self) -> None:
        said = await self.live.announcement(self.call_id)
        entry = self.live.entry(self.call_id)
        if said is None or entry is None:
            return
        self.chat.events.emit(AnnouncedPosition(group=entry.group or "", position=said.position,
                                                wait_min=said.wait_min))
        self.chat.show_queue(entry.group or "", said.position, said.wait_min)

    def _back_to_bot(self, exit_: Exited) -> CallerInput:
        """Routing let the chat go: the flow's queue-timeout offer (callback, message)."""
        waited_s = (self.live.now() - self.joined_at).total_seconds() if self.joined_at else 0
        queue = self.link.packet.queue if self.link else ""
        self.chat.events.emit(QueueTimeout(queue=queue, waited_s=round(waited_s, 1)))
        return CallerInput(kind="queue_timeout", at=self.chat.deps.clock())

    async def _talk(self, conn: Connected) -> TalkEnd:
        assert self.link is not None
        waited_s = (self.live.now() - self.joined_at).total_seconds() if self.joined_at else 0.0
        return await ChatTalk(self.chat, self.live, self.link, conn, waited_s).run()

    async def close(self) -> None:
        return None


class ChatTalk:
    """The visitor and an agent typing to each other; the desk's actions come to
    ``control`` (``message``, ``hangup``)."""

    def __init__(self, chat: ChatSession, live: LiveRouting, link: CallLink, conn: Connected,
                 waited_s: float) -> None:
        self.chat = chat
        self.live = live
        self.link = link
        self.conn = conn
        self.waited_s = waited_s
        self.started = time.monotonic()
        self.state = "talking"
        self._done: asyncio.Future[TalkEnd] = asyncio.get_running_loop().create_future()

    def agents(self) -> set[str]:
        return {self.conn.agent_id}

    def _talk_s(self) -> float:
        return round(time.monotonic() - self.started, 3)

    async def run(self) -> TalkEnd:
        chat, conn, call_id = self.chat, self.conn, self.chat.info.call_id
        setup_ms = round((time.monotonic() - conn.answered_at) * 1000, 1)
        chat.events.emit(AgentConnected(agent_id=conn.agent_id, device=conn.device,
                                        offer_id=conn.offer.id if conn.offer else "",
                                        waited_s=round(self.waited_s, 3), setup_ms=setup_ms))
        chat.conversation.agent_answered = True
        self.live.talks[call_id] = self
        self.live.desk.watch(conn.agent_id, call_id)
        self.live.desk.send(conn.agent_id, {"type": "connected", "call_id": call_id,
                                            "device": conn.device, "channel": "chat",
                                            "packet": self.link.packet.model_dump(mode="json")})
        chat.show_agent("joined", self._name())
        end: TalkEnd | None = None
        reader = asyncio.create_task(self._visitor(), name=f"chat-talk-{call_id}")
        try:
            end = await asyncio.shield(self._done)
            return end
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await self._stop(end)

    def _name(self) -> str:
        agent = self.live.service.routing.agents.get(self.conn.agent_id)
        return str(getattr(agent, "name", "") or self.conn.agent_id)

    async def _visitor(self) -> None:
        while True:
            item = await self.chat.inbox.get()
            if isinstance(item.message, TextIn):
                self.chat.events.emit(TranscriptHeard(text=item.message.text, is_final=True,
                                                      speaker="caller"))

    async def _stop(self, end: TalkEnd | None) -> None:
        call_id, agent_id = self.chat.info.call_id, self.conn.agent_id
        self.live.talks.pop(call_id, None)
        reason = end.reason if end is not None else "caller_hangup"
        talk_s = self._talk_s()
        self.chat.events.emit(AgentDisconnected(agent_id=agent_id, reason=reason, talk_s=talk_s,
                                                hold_s=0.0))
        # said on the desk's own feed: the record's events reach it through the bus, after
        # ``call_ended`` below has stopped the desk watching this chat
        self.live.desk.send(agent_id, {"type": "talk_ended", "call_id": call_id,
                                       "channel": "chat", "reason": reason})
        if end is not None:
            self.chat.show_agent("left", self._name())
        self.live.spawn(self.conn.leg.close(), f"chat-desk-close-{call_id}")
        group = self.conn.offer.group if self.conn.offer else None
        await self.live.call_ended(agent_id, call_id, talk_s, group)

    async def control(self, agent_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if agent_id != self.conn.agent_id:
            raise DeskError(409, f"{self.conn.agent_id} has chat {self.chat.info.call_id}")
        if self._done.done() or self.chat.finished:
            raise DeskError(409, f"chat {self.chat.info.call_id} is over")
        if action == "message":
            text = clean_text(str(body.get("text") or ""))
            if not text:
                raise DeskError(400, "text: the message is empty")
            seq = self.chat.agent_message(text, self._name())
            self.chat.events.emit(TranscriptHeard(text=text, is_final=True, speaker="agent"))
            return {"state": self.state, "seq": seq}
        if action == "hangup":
            self._done.set_result(TalkEnd("agent_hangup", self._talk_s()))
            return {"state": "ended"}
        if action == "handback":
            raise DeskError(409, f"{self.chat.info.call_id} is a chat: it cannot be handed "
                            "back to the bot")
        raise DeskError(409, f"{action!r} is not available in a chat (message, hangup)")
