"""Listening: the caller's media in, the recognizer stream, VAD timing and barge-in.

``Listener.run`` reads the media leg until the caller hangs up: audio goes to the recording
and the open recognizer stream, keypad presses go straight to ``inputs``. The recognizer
stream (opened per locale; its grammar changes per menu) is read by a watched task: final
transcripts go to ``inputs``, partials and VAD edges drive barge-in and the turn clock. If
recognition fails mid-call, the call goes on keypad-only: a ``speech_unavailable`` event, and
an ``AsrLost`` item in ``inputs`` so a waiting listen can tell the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.asr.errors import AsrError
from app.call.eventlog import CallEventLog
from app.call.media import CallMedia
from app.call.player import Player, TurnClock
from app.call.ports import AsrStream, SpeechRecognizer
from app.call.recorder import Recorder
from app.events import AudioChunk, Dtmf, SpeechActivity, Transcript
from app.pii import MASKED_KEY, SENSITIVE
from app.record import (
    AsrGrammarRejected,
    AsrWorkerRestarted,
    DtmfPressed,
    SpeechUnavailable,
    TranscriptHeard,
)

BARGE_IN_MIN_SPEECH_S = 0.25


@dataclass(frozen=True)
class AsrLost:
    """Recognition stopped working in this call (the reason is in the event log)."""

    reason: str


CallerItem = Transcript | Dtmf | AsrLost


class Listener:
    def __init__(self, call_id: str, media: CallMedia, asr: SpeechRecognizer | None,
                 events: CallEventLog, recorder: Recorder | None, player: Player,
                 clock: TurnClock) -> None:
        self.call_id = call_id
        self.media = media
        self.asr = asr
        self.events = events
        self.recorder = recorder
        self.player = player
        self.clock = clock
        self.rate_hz = media.sample_rate_hz
        self.inputs: asyncio.Queue[CallerItem] = asyncio.Queue()
        self.audio_chunks = 0
        self.asr_failed: str | None = None
        self.tap: Callable[[AudioChunk], None] | None = None  # caller audio (to an agent)
        self._stream: AsrStream | None = None
        self._stream_locale = ""
        self._reader: asyncio.Task[None] | None = None
        # a sensitive node is listening: keys and partial speech are recorded masked
        self.sensitive = False

    # -- media
    async def run(self) -> None:
        """Until the caller hangs up or the leg is lost (``media.end_reason`` says which)."""
        async for item in self.media.inbound():
            if isinstance(item, AudioChunk):
                self.audio_chunks += 1
                if self.clock.media_clock is None:
                    self.clock.media_clock = time.monotonic() - item.media_ts_ms / 1000
                if self.recorder is not None:
                    self.recorder.caller(item)
                if self._stream is not None:
                    self._stream.push(item)
                if self.tap is not None:
                    self.tap(item)
            else:
                self.events.emit(DtmfPressed(digit=MASKED_KEY if self.sensitive else item.digit))
                self.inputs.put_nowait(item)

    @property
    def keypad_only(self) -> bool:
        return self._stream is None

    # -- recognizer stream
    async def open(self, locale: str, grammar: list[str] | None) -> None:
        """Have a stream for ``locale`` listening with ``grammar`` (None: free speech)."""
        asr = self.asr
        if asr is None or self.asr_failed or locale not in asr.available_locales():
            await self.close()
            return
        if self._stream is not None and self._stream_locale == locale:
            try:
                self._stream.set_grammar(grammar)
            except AsrError as exc:  # phrases outside the model's words: listen freely
                self.events.emit(AsrGrammarRejected(reason=str(exc)[:300]))
                self._stream.set_grammar(None)
            return
        await self.close()
        try:
            stream = asr.stream(locale, self.rate_hz, grammar, call_id=self.call_id)
        except AsrError as exc:
            self.events.emit(AsrGrammarRejected(reason=str(exc)[:300]))
            stream = asr.stream(locale, self.rate_hz, None, call_id=self.call_id)
        self._stream, self._stream_locale = stream, locale
        self._reader = asyncio.create_task(self._read(stream), name=f"asr-{self.call_id}")
        self._reader.add_done_callback(self._reader_done)

    async def close(self) -> None:
        stream, reader = self._stream, self._reader
        self._stream, self._reader = None, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if stream is not None:
            await stream.aclose()

    def _reader_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task is not self._reader:
            return
        exc = task.exception()
        reason = ("the recognizer stream ended unexpectedly" if exc is None
                  else f"{type(exc).__name__}: {exc}"[:300])
        self.asr_failed = reason
        self._stream, self._reader = None, None
        self.events.emit(SpeechUnavailable(reason=reason))
        self.inputs.put_nowait(AsrLost(reason))

    async def _read(self, stream: AsrStream) -> None:
        last_partial = ""
        async for item in stream:
            if isinstance(item, SpeechActivity):
                self._speech_edge(item)
            elif isinstance(item, Transcript):
                if not item.is_final:
                    if item.text and item.text != last_partial:
                        last_partial = item.text
                        shown = SENSITIVE if self.sensitive else item.text
                        self.events.emit(TranscriptHeard(text=shown, is_final=False))
                        self.player.barge_in("partial")
                    continue
                last_partial = ""
                self.clock.speech_ended = self.clock.speech_ended or time.monotonic()
                if item.text.strip():
                    self.inputs.put_nowait(item)
            elif getattr(item, "type", None) == "asr_worker_restarted":
                self.events.emit(AsrWorkerRestarted(gap_ms=getattr(item, "gap_ms", None)))

    def _speech_edge(self, item: SpeechActivity) -> None:
        clock = self.clock
        if item.type == "speech_start":
            clock.speech_started = time.monotonic()
            started = clock.speech_started

            def check() -> None:  # speech that lasts past a cough barges in before a word
                if clock.speech_started == started and clock.speaking():
                    self.player.barge_in("vad")

            asyncio.get_running_loop().call_later(BARGE_IN_MIN_SPEECH_S, check)
            return
        clock.speech_ended = time.monotonic()
        origin = clock.media_clock
        clock.speech_end_true = (
            origin + item.media_ts_ms / 1000 if origin is not None else clock.speech_ended
        )

    def drop_stale_speech(self) -> None:
        """Speech heard during a prompt that did not allow barge-in is not an answer."""
        kept: list[CallerItem] = []
        while not self.inputs.empty():
            item = self.inputs.get_nowait()
            if not isinstance(item, Transcript):
                kept.append(item)  # keypad type-ahead is kept, as on any IVR
        for item in kept:
            self.inputs.put_nowait(item)
