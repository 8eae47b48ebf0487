"""Conversation scripts (``ivr_flows/tests``) run as web chats: `hotline flows test`.

Each script drives a real ``ChatSession`` (the conversation, its wire messages and its call
record) the way a visitor would: a ``dtmf`` turn presses the button with those keys when the
bot offers one, else types the keys (a collect node's input: ``4567#`` is typed ``4567``); a
``say`` turn types the text, understood like speech (the script's intent when it gives one,
as on voice); a ``silence`` turn types nothing until the chat's no-input time. After every
turn the script's expectations are checked against what the visitor received (bot messages)
and the record (flow steps, transfer, hang-up); at the end, the stored CDR (channel
``chat``, outcome, handoff queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from app.call.bus import EventBus
from app.call.conversation import ANONYMOUS
from app.call.info import CallDeps, CallInfo
from app.chat.form import InputHint
from app.chat.protocol import ButtonIn, ClientMessage, EndIn, TextIn
from app.chat.session import ChatLink, ChatSession
from app.events import Alternative, Entity, IntentResult, Sentiment
from app.flows.engine import FlowEngine
from app.flows.runtime import Action, Hangup, Listen, Say, Step, Transfer
from app.flows.scripts import (
    CannedWebhook,
    Script,
    ScriptResult,
    Turn,
    Understand,
    check_end,
    check_step,
    entered_nodes,
    scripted_speech,
)
from app.record import FlowStep, Listening, PromptPlayed, TransferRequested, WebhookCalled
from app.record import Hangup as HangupEvent
from app.routing.waiting import QueueBoard
from app.settings import Settings
from app.storage.repository import CallRepository

SILENCE_S = 1.5  # the chat's no-input time in a script: a silence turn waits this long
TURN_TIMEOUT_S = 60.0  # the bot's answer to one turn, at most
TURN_STEP = timedelta(seconds=5)  # the flows' clock moves on per turn, as on voice


@dataclass
class _Understood:
    intent: IntentResult
    entities: list[Entity] = field(default_factory=list)
    sentiment: Sentiment = field(default_factory=lambda: Sentiment(score=0.0, label="neutral"))


class ScriptedNlu:
    """The chat's understander in a script: the turn's scripted intent, else the real NLU."""

    def __init__(self, understand: Understand | None) -> None:
        self.understand = understand
        self.turn: Turn | None = None

    async def understand_async(self, heard: str | Sequence[Alternative], locale: str
                               ) -> _Understood:
        text = heard if isinstance(heard, str) else (heard[0].text if heard else "")
        turn = (self.turn or Turn(say=text)).model_copy(update={"say": text})
        inp = await asyncio.to_thread(scripted_speech, turn, locale, self.understand)
        intent = inp.intent or IntentResult(text=text, locale=locale, intent=None,
                                            confidence=0.0, reason="low_confidence")
        return _Understood(intent=intent, entities=inp.entities,
                           sentiment=inp.sentiment or Sentiment(score=0.0, label="neutral"))


class ScriptClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class CannedWebhooks:
    """The script's canned webhook answers, one per webhook the flow calls (its retries get
    the same answer); without one, the in-process demo order service answers."""

    def __init__(self, canned: list[CannedWebhook], demo: httpx.AsyncBaseTransport) -> None:
        self.canned = list(canned)
        self.demo = demo
        self.chat: ChatSession | None = None
        self._served = 0
        self._current: CannedWebhook | None = None

    def _webhooks_called(self) -> int:
        typed = self.chat.events.typed if self.chat is not None else []
        return sum(1 for _, e in typed if isinstance(e, WebhookCalled) and e.phase == "request")

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        called = self._webhooks_called()
        if called > self._served:
            self._served = called
            self._current = self.canned.pop(0) if self.canned else None
        answer = self._current
        if answer is None:
            return await self.demo.handle_async_request(request)
        if answer.status is None:
            raise httpx.ConnectError(answer.error or "no answer", request=request)
        return httpx.Response(answer.status, json=answer.data)


@dataclass
class _Turn:
    """What one turn produced: the messages the visitor got, the record's new events."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    boundary: dict[str, Any] | None = None  # the ask, queue or end that closed the turn


async def run_chat_script(
    script: Script, engine: FlowEngine, repo: CallRepository, settings: Settings,
    file: str = "", understand: Understand | None = None,
) -> ScriptResult:
    """Run ``script`` as a web chat; its record goes to ``repo``."""
    if "chat" not in script.channels:
        return ScriptResult(file=file, name=script.name, ok=True, channel="chat",
                            skipped=f"channels: {', '.join(script.channels)}")
    flow = engine.flows.get(script.flow)
    if flow is None:
        return ScriptResult(file=file, name=script.name, ok=False, channel="chat",
                            failures=[f"unknown flow {script.flow!r}"])
    from app.demo.orders import create_demo_app

    hooks = CannedWebhooks(script.webhooks, httpx.ASGITransport(app=create_demo_app()))
    nlu = ScriptedNlu(understand)
    clock = ScriptClock(script.at)
    async with httpx.AsyncClient(transport=httpx.MockTransport(hooks),
                                 base_url="http://demo") as http:
        deps = CallDeps(settings=settings, store=repo, bus=EventBus(), engine=engine, tts=None,
                        asr=None, nlu=nlu, http=http, queues=QueueBoard(), clock=clock)
        info = CallInfo(
            call_id=f"chat-script-{uuid.uuid4().hex[:12]}", flow_id=flow.id,
            hotline_number=script.hotline or next(iter(flow.hotline_numbers), ""),
            caller_number=script.caller or ANONYMOUS, locale=script.locale or flow.default_locale,
            channel="chat", default_locale=flow.default_locale,
        )
        chat = ChatSession(info, deps, no_input_s=SILENCE_S, detach_s=TURN_TIMEOUT_S)
        hooks.chat = chat
        runner = _ChatRun(script, chat, nlu, clock)
        task = asyncio.create_task(chat.run(), name=f"script-{info.call_id}")
        try:
            async with chat.attach() as link:
                fails = await runner.run(link)
            async with asyncio.timeout(TURN_TIMEOUT_S):
                await asyncio.shield(task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    fails += await asyncio.to_thread(_check_record, script, repo, info.call_id)
    return ScriptResult(file=file, name=script.name, ok=not fails, failures=fails,
                        transcript=runner.transcript, channel="chat")


class _ChatRun:
    def __init__(self, script: Script, chat: ChatSession, nlu: ScriptedNlu,
                 clock: ScriptClock) -> None:
        self.script, self.chat, self.nlu, self.clock = script, chat, nlu, clock
        self.transcript: list[str] = []
        self._seen = 0  # record events already attributed to a turn

    async def run(self, link: ChatLink) -> list[str]:
        script = self.script
        turn = await self._collect(link)
        step, fails = self._step(turn, "start")
        fails += check_step(script.start, step, entered_nodes(step), "start")
        for i, spec in enumerate(script.turns, 1):
            if self._over(turn):
                fails.append(f"turn {i}: the call already ended ({step.state.outcome})")
                break
            self.clock.now += TURN_STEP
            message, problem = self._input(spec, turn.boundary or {})
            if problem:
                fails.append(f"turn {i}: {problem}")
                break
            if message is not None:
                self.nlu.turn = spec
                link.submit(message)
            else:
                self.transcript.append("visitor: (types nothing)")
            turn = await self._collect(link)
            step, delivered = self._step(turn, f"turn {i}")
            fails += delivered + check_step(spec.expect, step, entered_nodes(step), f"turn {i}")
        if script.outcome is not None:
            fails += check_end(script.outcome, step, "outcome")
            if not step.state.done:
                fails.append(f"outcome: the call had not ended (at node {step.state.node!r})")
        if not self.chat.finished:
            link.submit(EndIn())
        return fails

    @staticmethod
    def _over(turn: _Turn) -> bool:
        boundary = turn.boundary or {}
        return boundary.get("type") in ("end", "queue")

    def _input(self, spec: Turn, ask: dict[str, Any]) -> tuple[ClientMessage | None, str]:
        """The visitor's message for a turn, or why the chat cannot take the turn."""
        if spec.silence:
            return None, ""
        if spec.say is not None:
            self.transcript.append(f"visitor: {spec.say}")
            return TextIn(text=spec.say), ""
        keys = spec.dtmf or ""
        buttons = {b["value"]: b["label"] for b in ask.get("buttons", [])}
        for value in (keys, keys.rstrip("#")):
            if value in buttons:
                self.transcript.append(f"visitor: [{buttons[value]}] (button {value})")
                return ButtonIn(value=value, ask=ask.get("seq")), ""
        typed = keys.rstrip("#")
        hint = InputHint.model_validate(ask.get("input") or {})
        if typed and (hint.kind != "text" or not buttons) and typed.isdigit():
            self.transcript.append(f"visitor: {typed} (typed keys)")
            return TextIn(text=typed), ""
        offered = ", ".join(buttons) or "none"
        return None, (f"keys {keys!r} are not a button in chat (buttons: {offered}); mark the "
                      f"script channels: [voice] if it is voice-only")

    async def _collect(self, link: ChatLink) -> _Turn:
        """Messages up to the next question, queue wait or end of the chat."""
        turn = _Turn()
        while True:
            async with asyncio.timeout(TURN_TIMEOUT_S):
                message = await link.receive()
            if message is None:
                return turn
            if message["type"] in ("ask", "queue", "end"):
                turn.boundary = message
                return turn
            if message["type"] == "message" and message["from"] == "bot":
                self.transcript.append(f"  bot: {message['text']}")
            turn.messages.append(message)

    def _step(self, turn: _Turn, where: str) -> tuple[Step, list[str]]:
        """The turn as the voice runner sees a step (the record's prompts, flow steps,
        listen, transfer or hang-up), and what the visitor did not get of it: one bot
        message per prompt, in order, as a screen shows it."""
        state = self.chat.state
        assert state is not None, "the chat has no flow state"
        typed = self.chat.events.typed[self._seen:]
        self._seen = len(self.chat.events.typed)
        prompts = [e for _, e in typed if isinstance(e, PromptPlayed) and e.text]
        shown = [m["text"] for m in turn.messages if m.get("from") == "bot"]
        wanted = [p.display or p.text for p in prompts]
        fails = [] if shown == wanted else [f"{where}: the visitor got {shown}, but the bot "
                                            f"said {wanted}"]
        actions: list[Action] = [Say(text=p.text, locale=p.locale) for p in prompts]
        events: list[dict[str, Any]] = []
        for _, event in typed:
            if isinstance(event, FlowStep):
                events.append(event.model_dump(exclude_none=True))
            elif isinstance(event, Listening):
                actions.append(Listen(grammar=event.grammar, timeout_s=event.timeout_s,
                                      locale=state.locale))
            elif isinstance(event, TransferRequested):
                actions.append(Transfer(queue=event.queue, reason=event.reason, note=event.note))
            elif isinstance(event, HangupEvent):
                actions.append(Hangup(outcome=event.outcome))
        return Step(state=state, actions=actions, events=events), fails


def _check_record(script: Script, repo: CallRepository, call_id: str) -> list[str]:
    """The stored record of the chat: a call on channel chat with the script's ending."""
    detail = repo.get_call(call_id)
    if detail is None:
        return ["record: the chat left no call record"]
    cdr = detail.cdr
    fails = [] if cdr.channel == "chat" else [f"record: channel {cdr.channel!r}, not 'chat'"]
    if cdr.ended_at is None:
        fails.append("record: the chat's CDR was not closed")
    want = script.outcome
    if want is not None and want.hangup is not None and cdr.outcome != want.hangup:
        fails.append(f"record: outcome {cdr.outcome!r}, expected {want.hangup!r}")
    if want is not None and want.transfer is not None:
        if cdr.handoff_target != want.transfer:
            fails.append(f"record: handoff to {cdr.handoff_target!r}, expected "
                         f"{want.transfer!r}")
        if cdr.outcome != "abandoned":  # the visitor left while queued
            fails.append(f"record: outcome {cdr.outcome!r}, expected 'abandoned'")
    return fails


async def run_scripts_as_chat(
    scripts: list[tuple[str, Script]], engine: FlowEngine, settings: Settings,
    understand: Understand | None = None,
) -> list[ScriptResult]:
    """Every script as a chat, recorded in a throwaway SQLite database (`hotline flows
    test`): the records are checked, then dropped with the folder."""
    import tempfile
    from pathlib import Path

    from app.storage.db import Database

    results: list[ScriptResult] = []
    with tempfile.TemporaryDirectory(prefix="hotline-chat-scripts-") as tmp:
        run_settings = settings.model_copy(update={"data_dir": Path(tmp), "database_url": None})
        db = Database.from_settings(run_settings)
        try:
            await asyncio.to_thread(db.migrate)
            repo = CallRepository(db)
            for file, script in scripts:
                results.append(await run_chat_script(script, engine, repo, run_settings, file,
                                                     understand))
        finally:
            await asyncio.to_thread(db.dispose)
    return results
