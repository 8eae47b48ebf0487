"""The conversation: flow engine steps carried out over any channel (voice or chat).

``Conversation.run`` starts the call's flow and loops: record the step's decisions, carry out
its actions, feed the next caller input back to the engine. What is channel-specific — how a
prompt reaches the caller, how the next input is awaited, how the caller waits for a human —
is the ``ConversationIO`` of the channel: ``CallSession`` for voice (TTS, ASR, keypad), a chat
session for text. Understanding (intent, entities, sentiment), webhooks, the handoff packet
and the record are the same for every channel.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import ValidationError

from app.call.eventlog import CallEventLog
from app.call.info import CallDeps, CallInfo
from app.flows.runtime import (
    CallContext,
    CallerInput,
    FlowState,
    Hangup,
    Listen,
    ResumeAt,
    Say,
    SetLocale,
    Step,
    Transfer,
    Webhook,
)
from app.flows.webhook import run_webhook
from app.pii import SENSITIVE
from app.record import (
    CallError,
    EntitiesFound,
    FlowStep,
    HandoffRequested,
    IntentDetected,
    LocaleChanged,
    NodeEntered,
    SentimentScored,
    TranscriptHeard,
    TransferRequested,
    WebhookCalled,
    flow_path,
    transcript_turns,
)
from app.record import Hangup as HangupEvent

HANGUP_GRACE_S = 0.5
ANONYMOUS = "anonymous"  # the record's caller number when there is none (web chat, withheld)


class ConversationIO(Protocol):
    """What a channel does for the conversation."""

    async def prepare(self, listen: Listen) -> None:
        """A step will end with ``listen``: get ready before its prompts (voice: open the
        recognizer so the caller can barge in)."""

    async def say(self, action: Say) -> bool:
        """Deliver one prompt; True when the caller interrupted it (barge-in)."""

    async def protect(self, sensitive: bool, node: str) -> None:
        """Whether the call is at a ``sensitive`` collect node (card numbers, PINs): keep
        what the caller says or presses out of the record (voice: and the recording)."""

    async def next_input(self, action: Listen, interrupted: bool) -> CallerInput:
        """The caller's answer to ``action`` (speech, keys, text, or no input)."""

    async def wait_for_agent(self, action: Transfer) -> CallerInput | ResumeAt | None:
        """The caller waits for a human: the flow's input when the wait ends unanswered,
        ``ResumeAt`` when an agent hands the caller back to the bot at a node, None when the
        call is over (an agent handled it; ``outcome`` was set)."""

    async def ending(self) -> None:
        """The flow hung up: let the goodbye reach the caller."""


class Conversation:
    def __init__(self, info: CallInfo, deps: CallDeps, events: CallEventLog,
                 io: ConversationIO) -> None:
        self.info = info
        self.deps = deps
        self.events = events
        self.io = io
        self.locale = info.locale
        self.state: FlowState | None = None
        self.outcome = "completed"
        self.queued = False  # waiting for a human right now
        self.agent_answered = False  # a human took the call at some point
        self.sensitive = False  # at a sensitive collect node: the caller's words are masked

    async def run(self) -> None:
        """The whole flow; returns when it hangs up (``outcome`` says how)."""
        info = self.info
        # "anonymous" names a withheld number in the record; the flow sees no number
        caller = "" if info.caller_number == ANONYMOUS else info.caller_number
        ctx = CallContext(call_id=info.call_id, hotline_number=info.hotline_number,
                          caller_number=caller, locale=self.locale, now=self.deps.clock())
        step = self.deps.engine.start(info.flow_id, ctx)
        while True:
            self._record_step(step)
            next_input = await self._run_actions(step)
            if next_input is None:
                return
            if isinstance(next_input, ResumeAt):  # an agent handed the caller back
                step = self.deps.engine.resume_at(step.state, next_input.node)
                continue
            step = self.deps.engine.step(step.state, next_input)

    def _record_step(self, step: Step) -> None:
        self.state = step.state
        for secret in step.secrets:  # before anything that could carry it is recorded
            self.events.redactor.add_secret(secret)
        for raw in step.events:
            fields = {k: v for k, v in raw.items() if k not in ("type", "at")}
            try:
                event = FlowStep.model_validate(fields)
            except ValidationError as exc:
                self.events.emit(CallError(reason="bad_flow_event", detail=str(exc)[:300],
                                           where="flow"))
                continue
            self.events.emit(event)
            if event.decision == "enter":
                self.events.emit(NodeEntered(node=event.node))

    def set_locale(self, locale: str | None) -> None:
        if locale and locale != self.locale:
            self.locale = locale
            self.events.emit(LocaleChanged(locale=locale))

    async def _run_actions(self, step: Step) -> CallerInput | ResumeAt | None:
        """Carry out a step's actions; returns the input for the next step, None at the end."""
        barged = False
        self.sensitive = step.sensitive
        await self.io.protect(step.sensitive, step.state.node)
        upcoming = step.listen
        if upcoming is not None:  # listen during the prompts too, for barge-in
            self.set_locale(upcoming.locale)
            await self.io.prepare(upcoming)
        for action in step.actions:
            if isinstance(action, Say):
                if not barged:
                    barged = await self.io.say(action)
            elif isinstance(action, SetLocale):
                self.set_locale(action.locale)
            elif isinstance(action, Listen):
                self.set_locale(action.locale)
                return await self.io.next_input(action, barged)
            elif isinstance(action, Webhook):
                self.events.emit(WebhookCalled(url=action.url, phase="request"))
                result = await run_webhook(action, self.deps.http)
                self.events.emit(WebhookCalled(url=action.url, phase="result", ok=result.ok,
                                               status=result.status))
                return result
            elif isinstance(action, Transfer):
                return await self._transfer(action)
            elif isinstance(action, Hangup):
                self.outcome = action.outcome
                self.events.emit(HangupEvent(outcome=action.outcome))
                await self.io.ending()
                return None
        # A step with no listen and no end: the engine promises never to do this.
        raise RuntimeError(f"flow step at {step.state.node} produced no listen or end")

    async def understand(self, heard: TranscriptHeard, locale: str | None = None
                         ) -> CallerInput:
        """What the caller said (or typed), recorded and understood: the engine's input.

        ``locale``: the language to understand it in, when the channel knows better than
        the call's current one (a chat message typed in another of the menu's languages)."""
        text = heard.text
        if self.sensitive:  # understood, but never recorded
            heard = heard.model_copy(update={"text": SENSITIVE})
        if heard.rejected:  # heard, but not taken as an answer
            self.events.emit(heard)
            return CallerInput(kind="speech", text="", at=self.deps.clock())
        self.events.emit(heard)
        nlu = self.deps.nlu
        if nlu is None:
            return CallerInput(kind="speech", text=text, at=self.deps.clock())
        try:
            understood = await nlu.understand_async(heard.alternatives or text,
                                                    locale or self.locale)
        except Exception as exc:  # the flow goes on with the words alone (menus, agent key)
            self.events.emit(CallError(reason=type(exc).__name__, detail=str(exc)[:300],
                                       where="nlu"))
            return CallerInput(kind="speech", text=text, at=self.deps.clock())
        intent, sentiment = understood.intent, understood.sentiment
        self.events.emit(IntentDetected(intent=intent.intent,
                                        confidence=round(intent.confidence, 3),
                                        reason=intent.reason,
                                        alternative=intent.alternative_index))
        self.events.emit(SentimentScored(score=round(sentiment.score, 3), label=sentiment.label))
        if understood.entities and not self.sensitive:
            self.events.emit(EntitiesFound(entities=understood.entities))
        if intent.text and intent.text != text:  # a lower alternative won: go on with it
            text = intent.text
        return CallerInput(
            kind="speech", text=text, intent=intent, entities=understood.entities,
            sentiment=sentiment, at=self.deps.clock(),
        )

    # ------------------------------------------------------------------ handoff
    def handoff_packet(self, action: Transfer) -> HandoffRequested:
        """What the agent sees before saying a word: why, intent, mood, the conversation."""
        state = self.state
        typed = list(self.events.typed)
        return HandoffRequested(
            queue=action.queue, reason=action.reason, note=action.note,
            intent=state.last_intent if state else None,
            confidence=state.last_confidence if state else None,
            sentiment=state.sentiment_score if state else None,
            transcript=transcript_turns(typed), flow_path=flow_path(typed),
        )

    async def _transfer(self, action: Transfer) -> CallerInput | ResumeAt | None:
        self.events.emit(TransferRequested(queue=action.queue, reason=action.reason,
                                           note=action.note))
        self.events.emit(self.handoff_packet(action))
        self.queued = True
        try:
            return await self.io.wait_for_agent(action)
        finally:
            self.queued = False


