"""Playback: the bot's prompts (synthesized text or recorded WAV) out to the caller.

``Player.say`` plays one ``Say`` action until it ends or the caller barges in. A prompt that
cannot be synthesized or played never ends the call: it is logged as a ``tts_failed`` event
and the flow goes on (the next action, usually a listen, still runs). ``TurnClock`` measures
turn latency: the end of the caller's speech to the first bot audio queued for sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.call.eventlog import CallEventLog
from app.call.media import CallMedia
from app.call.ports import Synthesizer
from app.call.recorder import Recorder
from app.events import AudioChunk
from app.flows.runtime import Say
from app.media.audio import frames
from app.metrics import TURN_LATENCY
from app.record import BargeIn, PromptPlayed, SpeechFailed, TurnLatency


@dataclass
class TurnClock:
    """Speech edges from the listener; the first bot audio after a turn closes it."""

    speech_started: float | None = None  # monotonic time of the VAD speech start
    speech_ended: float | None = None  # when the recognizer said the speech ended
    speech_end_true: float | None = None  # when the caller really stopped (media time)
    media_clock: float | None = None  # monotonic time of the caller's media_ts_ms == 0
    pending: bool = False  # a turn is waiting for its first bot audio

    def speaking(self) -> bool:
        return self.speech_started is not None and (
            self.speech_ended is None or self.speech_ended < self.speech_started
        )


class Player:
    def __init__(self, media: CallMedia, tts: Synthesizer | None, events: CallEventLog,
                 recorder: Recorder | None, clock: TurnClock) -> None:
        self.media = media
        self.tts = tts
        self.events = events
        self.recorder = recorder
        self.clock = clock
        self.rate_hz = media.sample_rate_hz
        self.barged = asyncio.Event()
        self.barge_allowed = False

    async def say(self, action: Say, locale: str) -> bool:
        """Play ``action``; True when the caller barged in. Failures are events, not errors."""
        self.events.emit(PromptPlayed(text=action.text or "", wav=action.wav, locale=locale,
                                      barge_in=action.barge_in))
        try:
            if action.wav:
                if self.tts is None:
                    raise RuntimeError("prompt audio is unavailable")
                pcm = await self.tts.prompt_wav(Path(action.wav), self.rate_hz)
                return await self.play(_iterate(frames(pcm.data, self.rate_hz)), action.barge_in)
            return await self.play_text(action.text or "", locale, action.barge_in,
                                        cache=action.cache)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.events.emit(SpeechFailed(text=(action.text or action.wav or "")[:200],
                                          reason=f"{type(exc).__name__}: {exc}"[:300]))
            return False

    async def say_quietly(self, text: str, locale: str) -> None:
        """A system announcement (queue position, notices): not a flow prompt, no barge-in;
        a failure is a ``tts_failed`` event."""
        try:
            await self.play_text(text, locale, barge_in=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.events.emit(SpeechFailed(text=text[:200],
                                          reason=f"{type(exc).__name__}: {exc}"[:300]))

    async def play_text(self, text: str, locale: str, barge_in: bool, cache: bool = True
                        ) -> bool:
        if self.tts is None:
            raise RuntimeError("speech synthesis is unavailable")
        stream = self.tts.stream(text, locale, self.rate_hz, cache=cache)
        return await self.play(stream, barge_in)

    async def play(self, chunks: AsyncIterator[AudioChunk], barge_in: bool) -> bool:
        """Play until done or barged in; returns True when the caller barged in."""
        self.barged.clear()
        self.barge_allowed = barge_in
        try:
            try:
                async for chunk in chunks:
                    if self.barged.is_set():
                        return True
                    self._turn_audio_out()
                    if self.recorder is not None:
                        self.recorder.bot(chunk)
                    await self.media.play(chunk)
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()
            return self.barged.is_set()
        finally:
            self.barge_allowed = False

    def barge_in(self, trigger: str) -> None:
        if not self.barge_allowed or self.barged.is_set():
            return
        dropped_ms = self.media.flush()
        self.barged.set()
        self.events.emit(BargeIn(trigger=trigger, dropped_ms=dropped_ms))

    def _turn_audio_out(self) -> None:
        clock = self.clock
        if not clock.pending or clock.speech_end_true is None:
            return
        clock.pending = False
        now = time.monotonic()
        latency_ms = (now - clock.speech_end_true) * 1000
        endpoint = clock.speech_ended or now
        self.events.emit(TurnLatency(ms=round(latency_ms, 1),
                                     after_endpoint_ms=round((now - endpoint) * 1000, 1)))
        TURN_LATENCY.observe(latency_ms / 1000)


async def _iterate(chunks: Iterable[AudioChunk]) -> AsyncIterator[AudioChunk]:
    for chunk in chunks:
        yield chunk
