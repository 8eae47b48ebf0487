"""One call, end to end: listen (media -> ASR), converse (input -> flow), speak (TTS -> media).

The session owns its tasks and cancels them cleanly. Any unexpected failure plays an apology
and ends the call; whatever happens, the call's record is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from app.asr.errors import AsrError
from app.call.eventlog import CallEventLog
from app.call.hold import HoldMusic
from app.call.media import CallMedia
from app.call.queues import QueueBoard
from app.call.recorder import Recorder
from app.events import (
    AudioChunk,
    Dtmf,
    HandoffRequested,
    SpeechActivity,
    Transcript,
    utc_now,
)
from app.flows.engine import FlowEngine
from app.flows.runtime import (
    CallContext,
    CallerInput,
    FlowState,
    Hangup,
    Listen,
    Say,
    SetLocale,
    Step,
    Transfer,
    Webhook,
)
from app.flows.webhook import run_webhook
from app.log import get_logger
from app.metrics import CALLS_ACTIVE, CALLS_TOTAL, TURN_LATENCY
from app.settings import Settings

INTER_DIGIT_TIMEOUT_S = 3.0
BARGE_IN_MIN_SPEECH_S = 0.25
HANGUP_GRACE_S = 0.5
APOLOGY = {
    "zh": "抱歉，系统出现问题，请稍后再拨。",
    "en": "Sorry, something went wrong on our side. Please call again later.",
}
QUEUE_POSITION = {
    "zh": "您前面还有{ahead}位客户，您是第{n}位，请稍候。",
    "en": "You are number {n} in the queue. Please hold.",
}


@dataclass
class CallDeps:
    """The shared, process-wide parts a call uses (loaded once, wired in main.py)."""

    settings: Settings
    repo: Any  # app.storage.repository.CallRepository
    bus: Any  # app.call.bus.EventBus
    engine: FlowEngine
    tts: Any | None  # app.tts.service.TtsService
    asr: Any | None  # app.asr.engine.AsrEngine
    nlu: Any | None  # app.nlu.service.NluService
    http: Any  # httpx.AsyncClient
    queues: QueueBoard = field(default_factory=QueueBoard)


@dataclass
class CallInfo:
    call_id: str
    flow_id: str
    hotline_number: str
    caller_number: str
    locale: str
    channel: str
    recording: bool = False


class CallSession:
    def __init__(self, info: CallInfo, media: CallMedia, deps: CallDeps) -> None:
        self.info = info
        self.media = media
        self.deps = deps
        self.rate_hz = media.sample_rate_hz
        self.locale = info.locale
        self.log = get_logger(call_id=info.call_id)
        self.events = CallEventLog(info.call_id, deps.repo, deps.bus)
        self.recorder = Recorder(self.rate_hz, deps.settings.call_max_duration_s)
        self._inputs: asyncio.Queue[Transcript | Dtmf] = asyncio.Queue()
        self._asr_stream: Any | None = None
        self._asr_task: asyncio.Task[None] | None = None
        self._asr_stream_locale = ""
        self._listen_started = 0.0
        self._speech_started: float | None = None
        self._speech_ended: float | None = None
        self._speech_end_true: float | None = None  # when the caller really stopped talking
        self._media_clock: float | None = None  # monotonic time of media_ts_ms == 0
        self._barge_allowed = False
        self._barged = asyncio.Event()
        self._first_audio_pending = False
        self.outcome = "completed"
        self.state: FlowState | None = None
        self._hung_up = asyncio.Event()
        self._turns: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> str:
        info = self.info
        self.events.start()
        await asyncio.to_thread(
            self.deps.repo.start_call, info.call_id, info.hotline_number, info.caller_number,
            info.channel, info.locale, utc_now(), info.flow_id,
        )
        self.events.emit(
            "call_started", hotline_number=info.hotline_number, caller_number=info.caller_number,
            channel=info.channel, locale=info.locale, flow_id=info.flow_id,
        )
        self.log.info("call_started", hotline=info.hotline_number, channel=info.channel)
        CALLS_ACTIVE.inc()
        listener = asyncio.create_task(self._listen(), name=f"listen-{info.call_id}")
        converse = asyncio.create_task(self._converse(), name=f"converse-{info.call_id}")
        try:
            done, _ = await asyncio.wait(
                {listener, converse}, timeout=self.deps.settings.call_max_duration_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                self.outcome = "max_duration"
            elif converse in done:
                exc = converse.exception()
                if exc is not None:
                    await self._fail(exc)
            else:
                self.outcome = "abandoned" if self.outcome == "queued" else "caller_hangup"
        except asyncio.CancelledError:
            self.outcome = "interrupted"
            raise
        finally:
            try:
                await self._finish(listener, converse)
            finally:
                CALLS_ACTIVE.dec()
                CALLS_TOTAL.labels(self.outcome).inc()
        return self.outcome

    async def _fail(self, exc: BaseException) -> None:
        self.log.error("call_failed", error=repr(exc))
        self.events.emit("error", reason=type(exc).__name__, detail=str(exc)[:500])
        self.outcome = "error"
        text = APOLOGY.get(self.locale, APOLOGY["en"])
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._play_text(text, self.locale, barge_in=False), 15)

    async def _finish(self, *tasks: asyncio.Task[Any]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_asr()
        self.deps.queues.leave(self.info.call_id)
        with contextlib.suppress(Exception):
            await self.media.close()
        if self.info.recording and self.recorder.duration_s > 0:
            path = self.deps.settings.recordings_dir / f"{self.info.call_id}.wav"
            duration_s = await asyncio.to_thread(self.recorder.save, path)
            await asyncio.to_thread(
                self.deps.repo.add_recording, self.info.call_id, str(path), duration_s, True
            )
            self.events.emit("recording_saved", url=f"/v1/calls/{self.info.call_id}/recording",
                             duration_s=round(duration_s, 2))
        if self.state is not None:
            state = self.state.model_dump(mode="json")
            await asyncio.to_thread(self.deps.repo.save_flow_state, self.info.call_id, state)
        self.events.emit("call_ended", outcome=self.outcome)
        await self.events.close()
        await asyncio.to_thread(self.deps.repo.end_call, self.info.call_id, self.outcome, utc_now())
        self.log.info("call_ended", outcome=self.outcome)

    # ------------------------------------------------------------------ listen
    async def _listen(self) -> None:
        async for item in self.media.inbound():
            if isinstance(item, AudioChunk):
                if self._media_clock is None:
                    self._media_clock = time.monotonic() - item.media_ts_ms / 1000
                self.recorder.caller(item)
                if self._asr_stream is not None:
                    self._asr_stream.push(item)
            else:
                self.events.emit("dtmf", digit=item.digit)
                self._inputs.put_nowait(item)
        self._hung_up.set()

    async def _open_asr(self, grammar: list[str] | None) -> None:
        asr = self.deps.asr
        if asr is None or self.locale not in asr.available_locales():
            return
        if self._asr_stream is not None and self._asr_stream_locale == self.locale:
            try:
                self._asr_stream.set_grammar(grammar)
            except AsrError as exc:  # phrases outside the model's words: listen freely
                self.events.emit("asr_grammar_rejected", reason=str(exc))
                self._asr_stream.set_grammar(None)
            return
        await self._close_asr()
        try:
            stream = asr.stream(self.locale, self.rate_hz, grammar, call_id=self.info.call_id)
        except AsrError as exc:
            self.events.emit("asr_grammar_rejected", reason=str(exc))
            stream = asr.stream(self.locale, self.rate_hz, None, call_id=self.info.call_id)
        self._asr_stream = stream
        self._asr_stream_locale = self.locale
        self._asr_task = asyncio.create_task(
            self._read_asr(self._asr_stream), name=f"asr-{self.info.call_id}"
        )

    async def _close_asr(self) -> None:
        stream, task = self._asr_stream, self._asr_task
        self._asr_stream, self._asr_task = None, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if stream is not None:
            await stream.aclose()

    async def _read_asr(self, stream: Any) -> None:
        last_partial = ""
        async for item in stream:
            if isinstance(item, SpeechActivity):
                if item.type == "speech_start":
                    self._speech_started = time.monotonic()
                    self._schedule_barge_check()
                else:
                    self._speech_ended = time.monotonic()
                    clock = self._media_clock
                    self._speech_end_true = (
                        clock + item.media_ts_ms / 1000 if clock is not None
                        else self._speech_ended
                    )
                continue
            if not item.is_final:
                if item.text and item.text != last_partial:
                    last_partial = item.text
                    self.events.emit("transcript", text=item.text, is_final=False)
                    self._barge_in("partial")
                continue
            last_partial = ""
            self._speech_ended = self._speech_ended or time.monotonic()
            if item.text.strip():
                self._inputs.put_nowait(item)

    def _schedule_barge_check(self) -> None:
        """Speech that lasts past the minimum (not a cough) barges in even before a word."""
        started = self._speech_started

        def check() -> None:
            if self._speech_started == started and (
                self._speech_ended is None or self._speech_ended < (started or 0)
            ):
                self._barge_in("vad")

        asyncio.get_running_loop().call_later(BARGE_IN_MIN_SPEECH_S, check)

    def _barge_in(self, trigger: str) -> None:
        if not self._barge_allowed or self._barged.is_set():
            return
        dropped_ms = self.media.flush()
        self._barged.set()
        self.events.emit("barge_in", trigger=trigger, dropped_ms=dropped_ms)

    # ------------------------------------------------------------------ speak
    async def _play_text(self, text: str, locale: str, barge_in: bool) -> bool:
        tts = self.deps.tts
        if tts is None:
            raise RuntimeError("speech synthesis is unavailable")
        return await self._play(tts.stream(text, locale, self.rate_hz), barge_in)

    async def _play(self, chunks: Any, barge_in: bool) -> bool:
        """Play until done or barged in; returns True when the caller barged in."""
        self._barged.clear()
        self._barge_allowed = barge_in
        try:
            async with contextlib.aclosing(chunks) as stream:
                return await self._play_chunks(stream)
        finally:
            self._barge_allowed = False

    async def _play_chunks(self, chunks: Any) -> bool:
        async for chunk in chunks:
            if self._barged.is_set():
                return True
            if self._first_audio_pending and self._speech_end_true is not None:
                # end of the caller's speech (endpointing included) -> first bot audio out
                self._first_audio_pending = False
                now = time.monotonic()
                latency_ms = (now - self._speech_end_true) * 1000
                endpoint = self._speech_ended or now
                self.events.emit("turn_latency", ms=round(latency_ms, 1),
                                 after_endpoint_ms=round((now - endpoint) * 1000, 1))
                TURN_LATENCY.observe(latency_ms / 1000)
            self.recorder.bot(chunk)
            await self.media.play(chunk)
        return self._barged.is_set()

    async def _say(self, action: Say) -> bool:
        self.events.emit("prompt_played", text=action.text or "", wav=action.wav,
                         locale=action.locale or self.locale, barge_in=action.barge_in)
        locale = action.locale or self.locale
        if action.text:
            self._turns.append({"speaker": "bot", "text": action.text})
            await asyncio.to_thread(
                self.deps.repo.add_turn, self.info.call_id, "bot", action.text, 0.0, 0.0, 1.0
            )
        if action.wav:
            if self.deps.tts is None:
                raise RuntimeError("prompt audio is unavailable")
            pcm = await self.deps.tts.prompt_wav(action.wav, self.rate_hz)
            from app.media.audio import frames

            async def gen() -> Any:
                for chunk in frames(pcm.data, self.rate_hz):
                    yield chunk

            return await self._play(gen(), action.barge_in)
        return await self._play_text(action.text or "", locale, action.barge_in)

    # ------------------------------------------------------------------ converse
    async def _converse(self) -> None:
        ctx = CallContext(
            call_id=self.info.call_id, hotline_number=self.info.hotline_number,
            caller_number=self.info.caller_number, locale=self.locale, now=utc_now(),
        )
        step = self.deps.engine.start(self.info.flow_id, ctx)
        while True:
            self._record_step(step)
            next_input = await self._run_actions(step)
            if next_input is None:
                return
            step = self.deps.engine.step(step.state, next_input)

    def _record_step(self, step: Step) -> None:
        self.state = step.state
        for event in step.events:
            payload = dict(event)
            kind = str(payload.pop("type", "flow_step"))
            payload.pop("at", None)
            self.events.emit(kind, **payload)
            if kind == "flow_step" and payload.get("decision") == "enter":
                self.events.emit("node_entered", node=payload.get("node"))

    async def _run_actions(self, step: Step) -> CallerInput | None:
        """Carry out a step's actions; returns the input for the next step, None at the end."""
        barged = False
        upcoming = step.listen
        if upcoming is not None:  # listen during the prompts too, for barge-in
            self.locale = upcoming.locale or self.locale
            await self._open_asr(list(upcoming.grammar) if upcoming.grammar else None)
        for action in step.actions:
            if isinstance(action, Say):
                if barged:
                    continue
                barged = await self._say(action)
            elif isinstance(action, SetLocale):
                self.locale = action.locale
                self.events.emit("locale_changed", locale=action.locale)
            elif isinstance(action, Listen):
                return await self._await_input(action, barged)
            elif isinstance(action, Webhook):
                self.events.emit("webhook", url=action.url, phase="request")
                result = await run_webhook(action, self.deps.http)
                self.events.emit("webhook", url=action.url, phase="result", ok=result.ok,
                                 status=result.status)
                return result
            elif isinstance(action, Transfer):
                return await self._transfer(action)
            elif isinstance(action, Hangup):
                self.outcome = action.outcome
                self.events.emit("hangup", outcome=action.outcome)
                await asyncio.sleep(HANGUP_GRACE_S)  # let the goodbye's queued audio play out
                return None
        # A step with no listen and no end: the engine promises never to do this.
        raise RuntimeError(f"flow step at {step.state.node} produced no listen or end")

    async def _await_input(self, action: Listen, barged: bool) -> CallerInput:
        self.locale = action.locale or self.locale
        grammar = list(action.grammar) if action.grammar else None
        await self._open_asr(grammar)
        if not barged:
            self._drop_stale_speech()
        keypad_only = self._asr_stream is None
        self.events.emit("listen", grammar=grammar, timeout_s=action.timeout_s,
                         keypad_only=keypad_only)
        deadline = time.monotonic() + action.timeout_s
        digits = ""
        while True:
            timeout_s = deadline - time.monotonic()
            if self._speech_in_progress():
                timeout_s = max(timeout_s, 1.0)
            try:
                item = await asyncio.wait_for(self._inputs.get(), max(timeout_s, 0.01))
            except TimeoutError:
                if digits:
                    return self._dtmf_input(digits)
                if self._speech_in_progress():
                    continue
                self.events.emit("no_input", timeout_s=action.timeout_s)
                return CallerInput(kind="no_input", at=utc_now())
            if isinstance(item, Dtmf):
                if not action.dtmf_allowed:
                    continue
                if item.digit == action.terminator and digits:
                    return self._dtmf_input(digits)
                digits += item.digit
                if len(digits) >= action.max_digits:
                    return self._dtmf_input(digits)
                deadline = time.monotonic() + INTER_DIGIT_TIMEOUT_S
                continue
            if keypad_only or digits:
                continue
            return await self._understand(item)

    def _speech_in_progress(self) -> bool:
        return self._speech_started is not None and (
            self._speech_ended is None or self._speech_ended < self._speech_started
        )

    def _drop_stale_speech(self) -> None:
        """Speech heard during a prompt that did not allow barge-in is not an answer."""
        kept: list[Transcript | Dtmf] = []
        while not self._inputs.empty():
            item = self._inputs.get_nowait()
            if isinstance(item, Dtmf):
                kept.append(item)  # keypad type-ahead is kept, as on any IVR
        for item in kept:
            self._inputs.put_nowait(item)

    def _dtmf_input(self, digits: str) -> CallerInput:
        return CallerInput(kind="dtmf", digits=digits, at=utc_now())

    async def _understand(self, transcript: Transcript) -> CallerInput:
        self._first_audio_pending = True
        min_conf = self.deps.settings.asr_grammar_min_confidence
        if transcript.grammar and transcript.confidence < min_conf:
            # Out-of-list speech forced onto a listed phrase: heard, but not a choice.
            self.events.emit("transcript", text=transcript.text, is_final=True,
                             confidence=round(transcript.confidence, 3), grammar=True,
                             rejected="low_confidence")
            self._turns.append({"speaker": "caller", "text": transcript.text, "heard": "unsure"})
            return CallerInput(kind="speech", text="", at=utc_now())
        self.events.emit("transcript", text=transcript.text, is_final=True,
                         confidence=round(transcript.confidence, 3), grammar=transcript.grammar)
        self._turns.append({"speaker": "caller", "text": transcript.text})
        await asyncio.to_thread(
            self.deps.repo.add_turn, self.info.call_id, "caller", transcript.text,
            transcript.start_s, transcript.end_s, transcript.confidence,
        )
        if self.deps.nlu is None:
            return CallerInput(kind="speech", text=transcript.text, at=utc_now())
        understood = await asyncio.to_thread(self.deps.nlu.understand, transcript.text, self.locale)
        intent, sentiment = understood.intent, understood.sentiment
        self.events.emit("intent", intent=intent.intent, confidence=round(intent.confidence, 3),
                         reason=intent.reason)
        self.events.emit("sentiment", score=round(sentiment.score, 3), label=sentiment.label)
        if understood.entities:
            self.events.emit("entities", entities=[e.model_dump() for e in understood.entities])
        return CallerInput(
            kind="speech", text=transcript.text, intent=intent, entities=understood.entities,
            sentiment=sentiment, at=utc_now(),
        )

    def _publish_handoff(self, action: Transfer) -> None:
        """What the agent sees before saying a word: why, intent, mood, the conversation."""
        state = self.state
        packet = HandoffRequested(
            call_id=self.info.call_id, queue=action.queue, reason=action.reason,
            note=action.note, intent=state.last_intent if state else None,
            sentiment=state.sentiment_score if state else None,
            transcript=list(self._turns),
        )
        self.events.emit("handoff_requested", **packet.model_dump(exclude={"type", "call_id"}))

    # ------------------------------------------------------------------ queue
    async def _transfer(self, action: Transfer) -> CallerInput | None:
        """Wait in the queue with hold audio and position messages, up to the max wait.

        Until agents are connected (routing), every wait ends at the max wait, and the flow
        goes on with a ``queue_timeout`` input (its voicemail or callback offer).
        """
        settings = self.deps.settings
        self.outcome = "queued"
        self.events.emit("transfer", queue=action.queue, reason=action.reason, note=action.note)
        self._publish_handoff(action)
        self.deps.queues.join(action.queue, self.info.call_id)
        hold = HoldMusic(self.rate_hz)
        started = time.monotonic()
        next_position = started
        try:
            while time.monotonic() - started < settings.queue_max_wait_s:
                if time.monotonic() >= next_position:
                    n = self.deps.queues.position(self.info.call_id)
                    text = QUEUE_POSITION.get(self.locale, QUEUE_POSITION["en"])
                    with contextlib.suppress(Exception):
                        await self._play_text(text.format(n=n, ahead=n - 1), self.locale, False)
                    self.events.emit("queue_position", queue=action.queue, position=n)
                    next_position = time.monotonic() + settings.queue_position_every_s
                chunk = hold.next_chunk()
                self.recorder.bot(chunk)
                await self.media.play(chunk)
        finally:
            self.deps.queues.leave(self.info.call_id)
        self.events.emit("queue_timeout", queue=action.queue,
                         waited_s=round(time.monotonic() - started, 1))
        self.outcome = "completed"
        return CallerInput(kind="queue_timeout", at=utc_now())
