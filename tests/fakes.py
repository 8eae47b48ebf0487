"""Lowest-layer stand-ins, for failure injection and for driving a call's timeline exactly.

``PipeMedia`` is a media leg with no network under it: what the test "says" goes into the
session as real-time 20 ms chunks (silence in between, as a phone line sends), and what the
bot plays is collected with the time it was sent. The session, ASR, TTS, flow engine and
database above it are the real ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from app.events import CALL_SAMPLE_RATE_HZ, FRAME_MS, AudioChunk, Dtmf
from app.media.audio import frames

_SILENCE = b"\x00" * (CALL_SAMPLE_RATE_HZ * FRAME_MS // 1000 * 2)


@dataclass
class SentAudio:
    at_s: float
    chunk: AudioChunk


@dataclass
class PipeMedia:
    sample_rate_hz: int = CALL_SAMPLE_RATE_HZ
    max_ahead_ms: float = 300.0
    sent: list[SentAudio] = field(default_factory=list)
    flushed_ms: int = 0
    closed: bool = False
    end_reason: str | None = None
    inbound_error: BaseException | None = None  # raised by inbound() (a broken transport)

    def __post_init__(self) -> None:
        self._caller: asyncio.Queue[AudioChunk | Dtmf | None] = asyncio.Queue()
        self._t0 = time.monotonic()
        self._play_clock = self._t0
        self._hangup = asyncio.Event()

    # -- the caller's side
    def say(self, pcm: bytes) -> float:
        """Queue caller audio; returns how long it lasts in seconds."""
        for chunk in frames(pcm, self.sample_rate_hz):
            self._caller.put_nowait(chunk)
        return len(pcm) / 2 / self.sample_rate_hz

    def press(self, digit: str) -> None:
        self._caller.put_nowait(Dtmf(digit=digit))

    def hang_up(self, reason: str = "caller_hangup") -> None:
        self.end_reason = self.end_reason or reason
        self._hangup.set()
        self._caller.put_nowait(None)

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def bot_audio_s(self) -> float:
        return sum(s.chunk.duration_ms for s in self.sent) / 1000

    async def wait_bot_audio(self, at_least_s: float, timeout_s: float = 30) -> None:
        """Until the bot has sent ``at_least_s`` of audio (more than it had so far)."""
        target = self.bot_audio_s() + at_least_s
        deadline = time.monotonic() + timeout_s
        while self.bot_audio_s() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot sent less than {at_least_s}s of audio")
            await asyncio.sleep(0.02)

    def media_info(self) -> dict[str, object]:
        return {"transport": "pipe", "bot_audio_s": round(self.bot_audio_s(), 2)}

    # -- CallMedia
    async def inbound(self) -> AsyncIterator[AudioChunk | Dtmf]:
        ts = 0
        next_at = time.monotonic()
        while not self._hangup.is_set():
            next_at += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if self.inbound_error is not None:
                raise self.inbound_error
            item: AudioChunk | Dtmf | None
            item = self._caller.get_nowait() if not self._caller.empty() else None
            if item is None and self._hangup.is_set():
                return
            if isinstance(item, Dtmf):
                yield item
                item = None
            ts += FRAME_MS
            yield item if isinstance(item, AudioChunk) else AudioChunk(
                _SILENCE, self.sample_rate_hz, ts
            )

    async def play(self, chunk: AudioChunk) -> None:
        now = time.monotonic()
        self._play_clock = max(self._play_clock, now)
        self.sent.append(SentAudio(self._play_clock - self._t0, chunk))
        self._play_clock += chunk.duration_ms / 1000
        ahead_s = self._play_clock - now - self.max_ahead_ms / 1000
        if ahead_s > 0:
            await asyncio.sleep(ahead_s)

    def flush(self) -> int:
        now = time.monotonic()
        dropped_s = max(0.0, self._play_clock - now)
        # chunks not yet "on the wire" are dropped
        self.sent = [s for s in self.sent if s.at_s + self._t0 <= now]
        self._play_clock = now
        dropped = int(dropped_s * 1000)
        self.flushed_ms += dropped
        return dropped

    async def close(self) -> None:
        self.closed = True
        self.end_reason = self.end_reason or "local_close"
        self._hangup.set()


def cut_network(pc: object) -> None:
    """A WebRTC peer vanishes: its UDP sockets stop sending and receiving, with no RTCP BYE,
    no DTLS close_notify and no SCTP abort reaching the other side (a crashed browser, a
    dropped Wi-Fi). ``pc`` is an aiortc ``RTCPeerConnection``; close it afterwards as usual."""
    from typing import Any

    def drop(*args: Any, **kwargs: Any) -> None:
        return None

    async def drop_async(*args: Any, **kwargs: Any) -> None:
        return None

    peer: Any = pc
    dtls = [t.sender.transport for t in peer.getTransceivers()]
    if peer.sctp is not None:
        dtls.append(peer.sctp.transport)
    for transport in dtls:
        for protocol in transport.transport._connection._protocols:
            protocol.datagram_received = drop
            protocol.send_data = drop_async
            protocol.send_stun = drop


_FAULT_AMOUNTS = {"brief": 0.5, "short": 1.0, "long": 60.0, "once": 1, "always": 9}


def faulty_tts_worker_main() -> None:
    """The real TTS worker (``app.tts.worker.main``), plus failure injection driven by the text.

    ``[[sleep S]]`` waits S seconds before rendering (a hang, or a window to kill it in);
    ``[[exit]]`` makes the process die mid-request; ``[[silent N]]`` returns a silent render
    the first N times that text is asked for (espeak's occasional empty output). S and N are
    words (``[[sleep long]]``, ``[[silent once]]``, see ``_FAULT_AMOUNTS``), since the text
    reaches the worker normalized (digits become words). The markers are removed before
    espeak-ng sees the text. Start it with
    ``TtsService(settings, worker_entry=FAULTY_TTS_WORKER)``.
    """
    import os
    import re

    from app.tts import worker

    real_render = worker.Synth.render
    silent_left: dict[str, int] = {}

    def render(self: worker.Synth, text: str, voice: str, rate_wpm: int) -> tuple[bytes, int]:
        silent = re.search(r"\[\[silent (\w+)\]\]", text)
        if silent:
            left = silent_left.setdefault(text, int(_FAULT_AMOUNTS[silent.group(1)]))
            if left > 0:
                silent_left[text] = left - 1
                pcm, rate = real_render(self, re.sub(r"\[\[[^\]]*\]\]", "", text), voice,
                                        rate_wpm)
                return bytes(len(pcm)), rate
        sleep = re.search(r"\[\[sleep (\w+)\]\]", text)
        if sleep:
            time.sleep(_FAULT_AMOUNTS[sleep.group(1)])
        if "[[exit]]" in text:
            os._exit(3)
        return real_render(self, re.sub(r"\[\[[^\]]*\]\]", "", text), voice, rate_wpm)

    worker.Synth.render = render  # type: ignore[method-assign]
    worker.main()


FAULTY_TTS_WORKER = "tests.fakes:faulty_tts_worker_main"


class ScriptedRecognizer:
    """The ASR seam with scripted results, for locales with no Vosk model here (zh, en).

    ``say(text)`` queues an utterance for the call's open stream: from the next audio chunk
    pushed, the stream yields ``speech_start``, and ``duration_s`` of media later
    ``speech_end`` then the final ``Transcript`` — on the call's media clock, as Vosk does, so
    NLU, flows, TTS, barge-in and turn latency run for real above it. ``fail(reason)`` makes
    the open stream raise ``AsrError`` (a recognizer dying mid-call).
    """

    def __init__(self, locales: tuple[str, ...] = ("zh", "en")) -> None:
        self.locales = set(locales)
        self.streams: list[ScriptedStream] = []

    def available_locales(self) -> set[str]:
        return set(self.locales)

    def stream(self, locale: str, sample_rate_hz: int, grammar: list[str] | None = None,
               call_id: str | None = None) -> ScriptedStream:
        stream = ScriptedStream(locale, grammar)
        self.streams.append(stream)
        return stream

    def current(self) -> ScriptedStream:
        open_streams = [s for s in self.streams if not s.closed]
        assert open_streams, "no recognizer stream is open (keypad-only listen?)"
        return open_streams[-1]

    def say(self, text: str, duration_s: float = 0.8, confidence: float = 0.95,
            alternatives: list[tuple[str, float]] | None = None) -> None:
        """``alternatives``: the n-best list (best first; ``text`` should be the first)."""
        self.current().utterances.append((text, duration_s, confidence, alternatives or []))

    def fail(self, reason: str = "recognizer process died") -> None:
        self.current().failure = reason
        self.current().wake()


class ScriptedStream:
    def __init__(self, locale: str, grammar: list[str] | None) -> None:
        from app.events import SpeechActivity, Transcript

        self._activity, self._transcript = SpeechActivity, Transcript
        self.locale = locale
        self.grammar = grammar
        self.utterances: list[tuple[str, float, float, list[tuple[str, float]]]] = []
        self.failure: str | None = None
        self.closed = False
        self.pushed_ms = 0
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._speaking: tuple[str, float, float, list[tuple[str, float]], int] | None = None

    def wake(self) -> None:
        self._out.put_nowait(None)

    def push(self, chunk: AudioChunk) -> None:
        self.pushed_ms += round(chunk.duration_ms)
        if self._speaking is None and self.utterances:
            text, duration_s, confidence, nbest = self.utterances.pop(0)
            self._speaking = (text, duration_s, confidence, nbest, self.pushed_ms)
            self._out.put_nowait(self._activity(type="speech_start", media_ts_ms=self.pushed_ms))
        elif self._speaking is not None:
            text, duration_s, confidence, nbest, start_ms = self._speaking
            if self.pushed_ms - start_ms >= duration_s * 1000:
                from app.events import Alternative

                self._speaking = None
                self._out.put_nowait(self._activity(type="speech_end",
                                                    media_ts_ms=self.pushed_ms))
                self._out.put_nowait(self._transcript(
                    text=text, is_final=True, locale=self.locale, confidence=confidence,
                    start_s=start_ms / 1000, end_s=self.pushed_ms / 1000,
                    grammar=self.grammar is not None,
                    alternatives=[Alternative(text=t, confidence=c) for t, c in nbest],
                ))

    def set_grammar(self, phrases: list[str] | None) -> None:
        self.grammar = list(phrases) if phrases is not None else None

    def end_input(self) -> None:
        self.wake()

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> object:
        from app.asr.errors import AsrError

        while True:
            if self.failure is not None:
                raise AsrError(self.failure)
            if self.closed:
                raise StopAsyncIteration
            item = await self._out.get()
            if item is not None:
                return item

    async def aclose(self) -> None:
        self.closed = True
        self.wake()
