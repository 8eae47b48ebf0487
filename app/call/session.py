"""One voice call, end to end: listen (media -> ASR), converse (input -> flow), speak.

``CallSession.run`` owns the call's tasks: the ``Listener`` (media in, recognizer, barge-in),
the ``Conversation`` (flow engine steps; this session is its voice ``ConversationIO``:
prompts through the ``Player``, answers by keypad through a ``KeypadCollector`` or by
speech, the wait for a human through ``app.routing.waiting``) and the recording. Whatever
happens — the caller hangs up, the leg is lost, a part fails, the process stops — the call
ends with one outcome and its record (``app.call.eventlog``) is closed: stored, or spooled
for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from app.call.conversation import HANGUP_GRACE_S, Conversation
from app.call.eventlog import CallClosing, CallEventLog, CallHeader
from app.call.info import CallDeps, CallInfo
from app.call.keypad import KeypadCollector
from app.call.listener import AsrLost, Listener
from app.call.media import CallMedia
from app.call.player import Player, TurnClock
from app.call.recorder import Recorder
from app.events import Dtmf, Transcript, utc_now
from app.flows.defaults import default_text
from app.flows.runtime import CallerInput, FlowState, Listen, ResumeAt, Say, Transfer
from app.log import get_logger
from app.metrics import CALLS_ACTIVE, CALLS_TOTAL
from app.pii import Redactor
from app.record import (
    CallEnded,
    CallError,
    CallStarted,
    Listening,
    NoInput,
    RecordingFailed,
    RecordingPaused,
    RecordingResumed,
    RecordingSaved,
    RecordingStarted,
    TranscriptHeard,
)
from app.routing.waiting import QueueWait

__all__ = ["CallDeps", "CallInfo", "CallSession"]

APOLOGY_TIMEOUT_S = 15.0
RECORDING_FLUSH_S = 1.0
CONNECTION_LOST = ("media_timeout", "network_lost", "ice_failed", "session_expired")


class CallSession:
    def __init__(self, info: CallInfo, media: CallMedia, deps: CallDeps) -> None:
        settings = deps.settings
        self.info = info
        self.media = media
        self.deps = deps
        self.log = get_logger(call_id=info.call_id)
        self.started_at = utc_now()
        header = CallHeader(info.call_id, info.hotline_number, info.caller_number,
                            info.channel, info.locale, self.started_at, info.flow_id,
                            settings.node_id)
        self.redactor = Redactor(kinds=tuple(settings.pii_redact_at_rest), owner=info.call_id)
        self.events = CallEventLog(header, deps.store, deps.bus, spool_dir=settings.spool_dir,
                                   retry_for_s=settings.record_retry_s, redactor=self.redactor)
        self.recording_file = f"{info.call_id}.wav"
        self.recorder = (
            Recorder(settings.recordings_dir / self.recording_file, media.sample_rate_hz,
                     settings.call_max_duration_s) if info.recording else None
        )
        self.clock = TurnClock()
        self.player = Player(media, deps.tts, self.events, self.recorder, self.clock)
        self.listener = Listener(info.call_id, media, deps.asr, self.events, self.recorder,
                                 self.player, self.clock)
        self.conversation = Conversation(info, deps, self.events, self)
        self.outcome = "completed"
        self._recording_open = False

    @property
    def locale(self) -> str:
        return self.conversation.locale

    @property
    def state(self) -> FlowState | None:
        return self.conversation.state

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> str:
        info, settings = self.info, self.deps.settings
        self.events.start()
        self.events.emit(CallStarted(
            hotline_number=info.hotline_number, caller_number=info.caller_number,
            channel=info.channel, locale=info.locale, flow_id=info.flow_id,  # type: ignore[arg-type]
        ))
        self.log.info("call_started", hotline=info.hotline_number, channel=info.channel)
        CALLS_ACTIVE.inc()
        tasks: list[asyncio.Task[Any]] = []
        try:
            problem = await self.events.wait_started(settings.record_start_timeout_s)
            if problem is not None:  # no record can be kept: say so, and end the call
                await self._fail(RuntimeError(problem), "storage")
                return self.outcome
            listener = asyncio.create_task(self._listen(), name=f"listen-{info.call_id}")
            converse = asyncio.create_task(self._converse(), name=f"converse-{info.call_id}")
            tasks = [listener, converse]
            if self.recorder is not None:
                tasks.append(asyncio.create_task(self._record(), name=f"rec-{info.call_id}"))
            done, _ = await asyncio.wait(
                {listener, converse}, timeout=settings.call_max_duration_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            failure: tuple[BaseException | None, str] | None = None
            if not done:
                self.outcome = "max_duration"
            elif converse in done and converse.exception() is not None:
                failure = converse.exception(), "flow"
            elif listener in done and listener.exception() is not None:
                failure = listener.exception(), "listen"
            elif listener in done:
                self.outcome = self._hangup_outcome()
            await _cancel([listener, converse])  # the conversation stops here
            if failure is not None:
                await self._fail(*failure)
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

    def _hangup_outcome(self) -> str:
        if self.conversation.agent_answered:
            return "agent_handled"
        if self.conversation.queued:
            return "abandoned"
        reason = self.media.end_reason
        if reason == "ice_failed" and self.listener.audio_chunks == 0:
            return "not_connected"
        return "connection_lost" if reason in CONNECTION_LOST else "caller_hangup"

    async def _fail(self, exc: BaseException | None, where: str) -> None:
        self.log.error("call_failed", where=where, error=repr(exc))
        self.events.emit(CallError(reason=type(exc).__name__, detail=str(exc)[:500],
                                   where=where))
        self.outcome = "error"
        apology = Say(text=self._system_text("apology"), locale=self.locale, barge_in=False)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(APOLOGY_TIMEOUT_S):
                await self.player.say(apology, self.locale)

    def system_text(self, key: str, locale: str | None = None) -> str:
        """A built-in text (``app.flows.defaults``) in the call's language."""
        return self._system_text(key, locale)

    def _system_text(self, key: str, locale: str | None = None) -> str:
        loc = locale or self.locale
        return (default_text(key, loc) or default_text(key, self.info.default_locale)
                or default_text(key, "en") or "")

    async def _finish(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Stop everything and close the record; every step is guarded."""
        await _cancel(tasks)
        if self.deps.handoff is not None:
            try:
                await self.deps.handoff.call_ending(self)
            except Exception as exc:  # the call still ends and its record is closed
                self.log.error("handoff_end_failed", error=repr(exc))
        with contextlib.suppress(Exception):
            await self.listener.close()
        self.deps.queues.leave(self.info.call_id)
        try:
            await self.media.close()
        except Exception as exc:
            self.log.warning("media_close_failed", error=repr(exc))
        recording = await self._close_recording()
        try:
            media = self.media.media_info()
        except Exception as exc:
            media = {"error": repr(exc)[:200]}
        ended_at = utc_now()
        self.events.emit(CallEnded(
            outcome=self.outcome, end_reason=self.media.end_reason, locale=self.locale,
            duration_s=round((ended_at - self.started_at).total_seconds(), 3), media=media,
        ))
        state = self.state.model_dump(mode="json") if self.state is not None else None
        await self.events.close(CallClosing(self.outcome, ended_at, state, recording))
        self.log.info("call_ended", outcome=self.outcome, end_reason=self.media.end_reason)

    # ------------------------------------------------------------------ recording
    async def _record(self) -> None:
        recorder = self.recorder
        assert recorder is not None
        try:
            await asyncio.to_thread(recorder.open)
            self._recording_open = True
            self.events.emit(RecordingStarted(file=self.recording_file))
            while True:
                await asyncio.sleep(RECORDING_FLUSH_S)
                await asyncio.to_thread(recorder.append, recorder.take())
        except OSError as exc:
            self._stop_recording(f"{type(exc).__name__}: {exc}")

    def _stop_recording(self, reason: str) -> None:
        self.events.emit(RecordingFailed(reason=reason[:300]))
        self.log.error("recording_failed", reason=reason)
        self.recorder = self.player.recorder = self.listener.recorder = None
        self._recording_open = False

    async def _close_recording(self) -> tuple[str, float, bool] | None:
        recorder = self.recorder
        if recorder is None or not self._recording_open:
            return None
        try:
            await asyncio.to_thread(recorder.append, recorder.take(final=True))
            await asyncio.to_thread(recorder.close)
        except OSError as exc:
            self._stop_recording(f"{type(exc).__name__}: {exc}")
            return None
        self.events.emit(RecordingSaved(file=self.recording_file,
                                        duration_s=round(recorder.duration_s, 2)))
        return self.recording_file, recorder.duration_s, True

    # ------------------------------------------------------------------ converse
    async def _listen(self) -> None:
        await self.listener.run()

    async def _converse(self) -> None:
        await self.conversation.run()
        self.outcome = self.conversation.outcome

    # ------------------------------------------------------------------ ConversationIO
    async def prepare(self, listen: Listen) -> None:
        await self.listener.open(self.locale, _grammar(listen))

    async def say(self, action: Say) -> bool:
        return await self.player.say(action, action.locale or self.locale)

    async def protect(self, sensitive: bool, node: str) -> None:
        """At a sensitive node: keys and partial speech are recorded masked, the recording
        pauses (silence kept in its place) and the caller is told; after it, it resumes."""
        self.listener.sensitive = sensitive
        recorder = self.recorder
        if recorder is None or recorder.paused == sensitive:
            return
        recorder.paused = sensitive
        if sensitive:
            self.events.emit(RecordingPaused(reason="sensitive_input", node=node))
            notice = Say(text=self._system_text("recording_paused"), locale=self.locale,
                         barge_in=False)
            await self.player.say(notice, self.locale)  # in the transcript too
        else:
            self.events.emit(RecordingResumed())

    async def ending(self) -> None:
        await asyncio.sleep(HANGUP_GRACE_S)  # let the goodbye's queued audio play out

    async def wait_for_agent(self, action: Transfer) -> CallerInput | ResumeAt | None:
        handoff = self.deps.handoff
        if handoff is not None and handoff.serves(self.info.hotline_number):
            return await handoff.wait_for_agent(self, action)
        settings = self.deps.settings
        wait = QueueWait(
            self.info.call_id, self.deps.queues, self.media, self.player, self.recorder,
            self.events, max_wait_s=settings.queue_max_wait_s,
            position_every_s=settings.queue_position_every_s, position_text=self._position,
            clock=self.deps.clock,
        )
        return await wait.run(action)

    def _position(self, n: int) -> tuple[str, str]:
        text = self._system_text("queue_position")
        return text.format(n=n, ahead=max(n - 1, 0)), self.locale

    def _heard(self, transcript: Transcript) -> TranscriptHeard:
        """A final transcript as the record keeps it; out-of-list speech that the grammar
        forced onto a listed phrase with a low score is heard, but not a choice."""
        self.clock.pending = True
        heard = TranscriptHeard(
            text=transcript.text, is_final=True, confidence=round(transcript.confidence, 3),
            grammar=transcript.grammar, start_s=transcript.start_s, end_s=transcript.end_s,
            alternatives=transcript.alternatives,
        )
        min_confidence = self.deps.settings.asr_grammar_min_confidence
        if transcript.grammar and transcript.confidence < min_confidence:
            return heard.model_copy(update={"rejected": "low_confidence"})
        return heard

    async def next_input(self, action: Listen, barged: bool) -> CallerInput:
        grammar = _grammar(action)
        await self.listener.open(self.locale, grammar)
        if not barged:
            self.listener.drop_stale_speech()
        self.events.emit(Listening(grammar=grammar, timeout_s=action.timeout_s,
                                   keypad_only=self.listener.keypad_only))
        keypad = KeypadCollector(action.max_digits, action.terminator)
        deadline = time.monotonic() + action.timeout_s
        while True:
            wait_s = (keypad.deadline() or deadline) - time.monotonic()
            if self.clock.speaking():
                wait_s = max(wait_s, 1.0)
            try:
                async with asyncio.timeout(max(wait_s, 0.01)):
                    item = await self.listener.inputs.get()
            except TimeoutError:
                digits = keypad.expire()
                if digits:
                    return CallerInput.dtmf(digits, at=self.deps.clock())
                if self.clock.speaking():
                    continue
                self.events.emit(NoInput(timeout_s=action.timeout_s))
                return CallerInput.no_input(at=self.deps.clock())
            if isinstance(item, AsrLost):  # tell the caller, give them time to press
                await self.player.say_quietly(self._system_text("speech_unavailable"),
                                              self.locale)
                deadline = time.monotonic() + action.timeout_s
                continue
            if isinstance(item, Dtmf):
                if not action.dtmf_allowed:
                    continue
                digits = keypad.press(item.digit, time.monotonic())
                if digits:
                    return CallerInput.dtmf(digits, at=self.deps.clock())
                continue
            if self.listener.keypad_only or keypad.digits:
                continue
            return await self.conversation.understand(self._heard(item))

async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _grammar(action: Listen) -> list[str] | None:
    return list(action.grammar) if action.grammar else None
