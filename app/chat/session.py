"""One web chat: the same flow, understanding and call record as a phone call, over text.

``ChatSession`` is the chat's ``ConversationIO``: a prompt becomes a bot message, a listen
becomes a question (``ask``: buttons for the keypad choices, an input hint for collect
nodes), a typed message is understood exactly like speech (``Conversation.understand``), a
button press is the key it stands for. The record is the same ``CallEventLog`` with channel
``chat``: events, CDR, outcome and transcript, as for a call.

Browsers come and go: every server message goes to the chat's ``outbox`` (numbered from 1),
and each connection (``attach``) reads it from the start, so a reloaded page shows the whole
chat and goes on. A chat with no connection for ``chat_detach_s`` ends (``connection_lost``);
the visitor ending it is ``caller_hangup`` (``abandoned`` while waiting for an agent).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from app.call.conversation import Conversation
from app.call.eventlog import CallClosing, CallEventLog, CallHeader
from app.call.info import CallDeps, CallInfo
from app.chat.form import Ask, ask_for, typed_locale
from app.chat.protocol import ButtonIn, ChatInputError, ClientMessage, EndIn, TextIn
from app.events import utc_now
from app.flows.defaults import default_text
from app.flows.runtime import CallerInput, FlowState, Listen, ResumeAt, Say, Transfer
from app.log import get_logger
from app.metrics import CALLS_ACTIVE, CALLS_TOTAL, CHAT_REPLY_LATENCY
from app.pii import MASKED_KEY
from app.record import (
    CallEnded,
    CallError,
    CallStarted,
    DtmfPressed,
    Listening,
    NoInput,
    PromptPlayed,
    QueuePosition,
    QueueTimeout,
    TranscriptHeard,
    TurnLatency,
)

INBOX_MAX = 8  # messages typed while the bot is still answering, at most
PROTOCOL = "hotline-chat.v1"


@dataclass
class _Input:
    message: TextIn | ButtonIn
    received_s: float = field(default_factory=time.monotonic)


class Outbox:
    """Everything the chat sent, in order; readers wait for more."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.closed = False
        self._changed = asyncio.Event()

    def put(self, message: dict[str, Any]) -> dict[str, Any]:
        item = {**message, "seq": len(self.items) + 1}
        self.items.append(item)
        self._wake()
        return item

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def read(self, index: int) -> dict[str, Any] | None:
        """Item ``index`` (0-based) once it exists; None when the chat ended before it."""
        while index >= len(self.items):
            if self.closed:
                return None
            await self._changed.wait()
        return self.items[index]


class ChatLink:
    """One browser connection to a chat: reads the outbox from the start, submits input."""

    def __init__(self, chat: ChatSession) -> None:
        self.chat = chat
        self.sent = 0

    async def receive(self) -> dict[str, Any] | None:
        item = await self.chat.outbox.read(self.sent)
        if item is not None:
            self.sent += 1
        return item

    def submit(self, message: ClientMessage) -> None:
        self.chat.submit(message)


class ChatSession:
    def __init__(self, info: CallInfo, deps: CallDeps, *, no_input_s: float | None = None,
                 detach_s: float | None = None) -> None:
        settings = deps.settings
        self.info = info
        self.deps = deps
        self.token = secrets.token_urlsafe(24)
        self.log = get_logger(call_id=info.call_id)
        self.started_at = utc_now()
        header = CallHeader(info.call_id, info.hotline_number, info.caller_number,
                            info.channel, info.locale, self.started_at, info.flow_id,
                            settings.node_id)
        self.events = CallEventLog(header, deps.store, deps.bus, spool_dir=settings.spool_dir,
                                   retry_for_s=settings.record_retry_s)
        self.conversation = Conversation(info, deps, self.events, self)
        self.outbox = Outbox()
        self.inbox: asyncio.Queue[_Input] = asyncio.Queue(maxsize=INBOX_MAX)
        self.no_input_s = no_input_s or settings.chat_no_input_s
        self.detach_s = detach_s or settings.chat_detach_s
        self.outcome = "completed"
        self.sensitive = False  # at a sensitive node: buttons are recorded masked
        self.end_reason: str | None = None
        self.stats = {"messages_in": 0, "buttons_in": 0, "rejected": 0, "connections": 0,
                      "messages_out": 0}
        self._ask: tuple[int, Ask] | None = None  # (seq, question) while one is open
        self._typing = False
        self._links = 0
        self._client_changed = asyncio.Event()
        self._reply_from: float | None = None  # when the input being answered arrived

    @property
    def locale(self) -> str:
        return self.conversation.locale

    @property
    def state(self) -> FlowState | None:
        return self.conversation.state

    @property
    def finished(self) -> bool:
        return self.outbox.closed

    # ------------------------------------------------------------------ client side
    @contextlib.asynccontextmanager
    async def attach(self) -> AsyncIterator[ChatLink]:
        """A browser connection for as long as the block runs."""
        self._links += 1
        self.stats["connections"] += 1
        self._client_changed.set()
        try:
            yield ChatLink(self)
        finally:
            self._links -= 1
            self._client_changed.set()

    def submit(self, message: ClientMessage) -> None:
        """Take one client message; raises ``ChatInputError`` when it cannot be taken."""
        if self.finished:
            raise ChatInputError("type", "the chat has ended")
        if isinstance(message, EndIn):
            self.end_reason = self.end_reason or "caller_hangup"
            self._client_changed.set()
            return
        if self.inbox.full():
            raise ChatInputError("text" if isinstance(message, TextIn) else "value",
                                 "too many messages while the bot is answering")
        if isinstance(message, ButtonIn):
            self._press(message)
        else:
            self.stats["messages_in"] += 1
            self._send({"type": "message", "from": "user", "text": message.text})
        self._ask = None  # answered: a late press on it is refused
        self.inbox.put_nowait(_Input(message))

    def _press(self, message: ButtonIn) -> None:
        if self._ask is None:
            raise ChatInputError("value", "no question is open; wait for the bot")
        seq, ask = self._ask
        if message.ask is not None and message.ask != seq:
            raise ChatInputError("ask", f"question {message.ask} was already answered; "
                                        f"the open one is {seq}")
        chosen = next((b for b in ask.buttons if b.value == message.value), None)
        if chosen is None:
            raise ChatInputError("value", f"{message.value!r} is not one of the offered "
                                          f"buttons ({', '.join(ask.values()) or 'none'})")
        self.stats["buttons_in"] += 1
        self._send({"type": "message", "from": "user", "text": chosen.label,
                    "button": chosen.value})

    def _send(self, message: dict[str, Any]) -> dict[str, Any]:
        self.stats["messages_out"] += 1
        return self.outbox.put(message)

    def _set_typing(self, on: bool) -> None:
        if on != self._typing and not self.finished:
            self._typing = on
            self._send({"type": "typing", "on": on})

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> str:
        info, settings = self.info, self.deps.settings
        self.events.start()
        self.events.emit(CallStarted(
            hotline_number=info.hotline_number, caller_number=info.caller_number,
            channel="chat", locale=info.locale, flow_id=info.flow_id,
        ))
        self.log.info("chat_started", hotline=info.hotline_number)
        CALLS_ACTIVE.inc()
        tasks: list[asyncio.Task[Any]] = []
        try:
            problem = await self.events.wait_started(settings.record_start_timeout_s)
            if problem is not None:  # no record can be kept: say so, and end the chat
                self._fail(RuntimeError(problem), "storage")
                return self.outcome
            converse = asyncio.create_task(self.conversation.run(),
                                           name=f"converse-{info.call_id}")
            client = asyncio.create_task(self._watch_client(), name=f"client-{info.call_id}")
            tasks = [converse, client]
            done, _ = await asyncio.wait(tasks, timeout=settings.call_max_duration_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            failure: BaseException | None = None
            if converse in done:
                failure = converse.exception()
                self.outcome = "error" if failure else self.conversation.outcome
            elif client in done:
                self.outcome = self._left_outcome()
            else:
                self.outcome = "max_duration"
            await _cancel(tasks)
            if failure is not None:
                self._fail(failure, "flow")
        except asyncio.CancelledError:
            self.outcome = "interrupted"
            raise
        finally:
            try:
                await self._finish(tasks)
            finally:
                CALLS_ACTIVE.dec()
                CALLS_TOTAL.labels(self.outcome).inc()
        return self.outcome

    def _left_outcome(self) -> str:
        if self.conversation.agent_answered:
            return "agent_handled"
        if self.conversation.queued:
            return "abandoned"
        return "caller_hangup" if self.end_reason == "caller_hangup" else "connection_lost"

    async def _watch_client(self) -> None:
        """Returns when the visitor ended the chat, or no browser came back in time."""
        while self.end_reason is None:
            self._client_changed.clear()
            if self._links > 0:
                await self._client_changed.wait()
                continue
            try:
                async with asyncio.timeout(self.detach_s):
                    await self._client_changed.wait()
            except TimeoutError:
                self.end_reason = "connection_lost"

    def _fail(self, exc: BaseException, where: str) -> None:
        self.log.error("chat_failed", where=where, error=repr(exc))
        self.events.emit(CallError(reason=type(exc).__name__, detail=str(exc)[:500],
                                   where=where))
        self.outcome = "error"
        self._bot_message(self._system_text("apology"), self.locale)

    def _system_text(self, key: str) -> str:
        return (default_text(key, self.locale) or default_text(key, self.info.default_locale)
                or default_text(key, "en") or "")

    async def _finish(self, tasks: list[asyncio.Task[Any]]) -> None:
        await _cancel(tasks)
        self.deps.queues.leave(self.info.call_id)
        if self.deps.handoff is not None:
            await self.deps.handoff.call_ending(self)
        ended_at = utc_now()
        self.events.emit(CallEnded(
            outcome=self.outcome, end_reason=self.end_reason, locale=self.locale,
            duration_s=round((ended_at - self.started_at).total_seconds(), 3),
            media={"transport": "websocket", **self.stats},
        ))
        self._typing = False
        self._send({"type": "end", "outcome": self.outcome})
        self.outbox.close()
        state = self.state.model_dump(mode="json") if self.state is not None else None
        await self.events.close(CallClosing(self.outcome, ended_at, state))
        self.log.info("chat_ended", outcome=self.outcome, end_reason=self.end_reason)

    # ------------------------------------------------------------------ ConversationIO
    async def prepare(self, listen: Listen) -> None:
        return None

    async def protect(self, sensitive: bool, node: str) -> None:
        """At a sensitive node the visitor's buttons are recorded masked (typed text is
        masked by the conversation); a chat has no recording to pause."""
        self.sensitive = sensitive

    async def say(self, action: Say) -> bool:
        locale = action.locale or self.locale
        self.events.emit(PromptPlayed(text=action.text or "", wav=action.wav, locale=locale,
                                      display=action.display))
        shown = action.display or action.text
        if shown:
            self._bot_message(shown, locale)
        return False

    def _bot_message(self, text: str, locale: str) -> None:
        if self._reply_from is not None:  # the first reply to the caller's message
            ms = round((time.monotonic() - self._reply_from) * 1000.0, 1)
            self._reply_from = None
            self.events.emit(TurnLatency(ms=ms, after_endpoint_ms=ms))
            CHAT_REPLY_LATENCY.observe(ms / 1000.0)
        self._send({"type": "message", "from": "bot", "text": text, "locale": locale})

    async def ending(self) -> None:
        return None

    async def next_input(self, action: Listen, interrupted: bool) -> CallerInput:
        state = self.state
        flow = self.deps.engine.flows.get(self.info.flow_id)
        ask = (ask_for(flow, state, action) if flow is not None and state is not None
               else Ask(locale=action.locale))
        self._set_typing(False)
        self._reply_from = None
        sent = self._send(ask.wire())
        self._ask = (int(sent["seq"]), ask)
        self.events.emit(Listening(grammar=list(action.grammar) if action.grammar else None,
                                   timeout_s=self.no_input_s))
        try:
            async with asyncio.timeout(self.no_input_s):
                item = await self.inbox.get()
        except TimeoutError:
            self._ask = None
            self.events.emit(NoInput(timeout_s=self.no_input_s))
            return CallerInput.no_input(at=self.deps.clock())
        self._ask = None
        self._reply_from = item.received_s
        self._set_typing(True)
        message = item.message
        if isinstance(message, ButtonIn):
            for key in message.value:
                self.events.emit(DtmfPressed(digit=MASKED_KEY if self.sensitive else key))
            return CallerInput.dtmf(message.value, at=self.deps.clock())
        heard = TranscriptHeard(text=message.text, is_final=True)
        return await self.conversation.understand(heard, typed_locale(message.text, action))

    async def wait_for_agent(self, action: Transfer) -> CallerInput | ResumeAt | None:
        """The visitor waits for a human. Where the routing knows the hotline, the chat is
        routed and offered like a call (``deps.handoff``: ``app.handoff.chat``); else it
        waits in the flow's queue until ``queue_max_wait_s`` and the flow goes on with
        ``queue_timeout`` (its callback/message offer), as on the phone."""
        handoff = self.deps.handoff
        if handoff is not None and handoff.serves(self.info.hotline_number):
            self._set_typing(False)
            self._reply_from = None
            return await handoff.wait_for_agent(self, action)
        return await self._wait_in_queue(action)

    async def _wait_in_queue(self, action: Transfer) -> CallerInput:
        """No routing: messages typed meanwhile are recorded; the wait ends at max wait."""
        settings = self.deps.settings
        board, call_id = self.deps.queues, self.info.call_id
        board.join(action.queue, call_id)
        self._set_typing(False)
        self._reply_from = None
        started = time.monotonic()
        deadline = started + settings.queue_max_wait_s
        next_position = started
        try:
            while (now := time.monotonic()) < deadline:
                if now >= next_position:
                    self._announce_position(action.queue, board.position(call_id))
                    next_position = now + settings.queue_position_every_s
                wait_s = min(deadline, next_position) - now
                try:
                    async with asyncio.timeout(max(wait_s, 0.001)):
                        item = await self.inbox.get()
                except TimeoutError:
                    continue
                if isinstance(item.message, TextIn):
                    self.events.emit(TranscriptHeard(text=item.message.text, is_final=True))
        finally:
            board.leave(call_id)
        self.events.emit(QueueTimeout(queue=action.queue,
                                      waited_s=round(time.monotonic() - started, 1)))
        return CallerInput(kind="queue_timeout", at=self.deps.clock())

    # ------------------------------------------------------------------ with an agent
    def show_queue(self, queue: str, position: int, wait_min: int | None) -> None:
        """The visitor's place in routing's queue (and the estimated wait, when known)."""
        text = self._system_text("queue_position").format(n=position,
                                                          ahead=max(position - 1, 0))
        if wait_min is not None:
            text += self._system_text("queue_wait").format(minutes=wait_min)
        self._send({"type": "queue", "queue": queue, "position": position, "text": text,
                    "locale": self.locale})

    def show_notice(self, key: str) -> None:
        text = self._system_text(key)
        if text:
            self._bot_message(text, self.locale)

    def show_agent(self, event: str, name: str) -> None:
        """An agent ``joined`` or ``left`` the chat."""
        self._send({"type": "agent", "event": event, "name": name})

    def agent_message(self, text: str, name: str) -> int:
        """What the agent typed at the desk; returns its seq in the chat."""
        sent = self._send({"type": "message", "from": "agent", "text": text, "name": name,
                           "locale": self.locale})
        return int(sent["seq"])

    def _announce_position(self, queue: str, n: int) -> None:
        text = self._system_text("queue_position").format(n=n, ahead=max(n - 1, 0))
        self.events.emit(QueuePosition(queue=queue, position=n))
        self._send({"type": "queue", "queue": queue, "position": n, "text": text,
                    "locale": self.locale})


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
