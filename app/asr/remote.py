"""The loop side of decoding in worker processes: streams pinned to workers, resumed on loss.

``RemoteDecoders`` owns the ASR ``WorkerPool`` (``app.asr.worker`` processes) and hands each
new stream to the worker with the fewest streams; the stream stays there. ``RemoteStream``
has the API of the thread decoder's ``RecognizerStream``: ``push`` copies the chunk into the
worker's socket and never blocks (at most ``max_queue_chunks`` unanswered chunks; beyond that
chunks are dropped and counted, and the worker is told how much audio is missing).

When a worker dies or hangs, the pool replaces it (a fork: milliseconds) and every stream it
held is opened again on the replacement, on the same clock: the audio that was with the dead
worker is lost, an utterance in progress gets its ``speech_end``, and the stream yields an
``AsrWorkerRestarted`` notice and goes on. A stream whose worker died more than
``MAX_RESUMES`` times in ``RESUME_WINDOW_S`` (audio that kills Vosk, say), or whose worker
cannot be replaced, ends with ``AsrError`` instead (the session falls back to the keypad).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.asr.decoder import AsrEvent
from app.asr.errors import AsrError
from app.asr.grammar import Grammar
from app.asr.stream import StreamClosedError, StreamStats
from app.events import AsrWorkerRestarted, AudioChunk, SpeechActivity, Transcript
from app.workers.pool import LostReason, PoolConfig, WorkerPool, WorkerSlot
from app.workers.protocol import Frame, encode

ENTRY = "app.asr.worker:main"
PRELOAD = "app.asr.worker:preload"
MAX_RESUMES = 2
RESUME_WINDOW_S = 60.0
START_TIMEOUT_S = 120.0  # the zygote loads every model first (a large one takes seconds)
ACK_EVERY_MAX = 25  # a worker confirms silence at least every 0.5 s (bounds the backlog count)
_END = object()

StreamEvent = Transcript | SpeechActivity | AsrWorkerRestarted


@dataclass(frozen=True)
class StreamSpec:
    """What a worker needs to open (or reopen) a stream's decoder."""

    model: str
    locale: str
    sample_rate_hz: int
    vad_aggressiveness: int
    silence_timeout_s: float
    grammar_silence_timeout_s: float | None
    max_queue_chunks: int
    max_alternatives: int = 0  # free-form n-best size


class RemoteDecoders:
    """The pool's handler: routes worker frames to streams, reopens streams on new workers."""

    def __init__(self, name: str, size: int, timeout_s: float, models: dict[str, str]) -> None:
        config = PoolConfig(name=name, size=size, entry=ENTRY, timeout_s=timeout_s,
                            preload=PRELOAD, preload_args={"models": models},
                            start_timeout_s=START_TIMEOUT_S)
        self.pool = WorkerPool(config, self)
        self._lock = threading.Lock()
        self._streams: dict[int, RemoteStream] = {}
        self._ready: set[int] = set()
        self._next_sid = 0

    def start(self) -> None:
        self.pool.start()

    def close(self) -> None:
        self.pool.close()

    def open(self, spec: StreamSpec, grammar: Grammar | None,
             compile_grammar: Callable[[Sequence[str]], Grammar], log: Any) -> RemoteStream:
        with self._lock:
            if self.pool.closed:
                raise AsrError("speech recognition is stopped")
            self._next_sid += 1
            load = {s.index: 0 for s in self.pool.slots}
            for stream in self._streams.values():
                load[stream.slot.index] += 1
            ranked = sorted(load, key=lambda i: (i not in self._ready, load[i], i))
            slot = self.pool.slots[ranked[0]]
            stream = RemoteStream(self, self._next_sid, slot, spec, grammar, compile_grammar, log)
            self._streams[stream.sid] = stream
            self.pool.stats.requests += 1
            if slot.index in self._ready:
                stream._attach()
        return stream

    def forget(self, sid: int) -> None:
        with self._lock:
            self._streams.pop(sid, None)

    # -- WorkerHandler (slot threads) ----------------------------------------------------------
    def on_ready(self, slot: WorkerSlot) -> None:
        with self._lock:
            self._ready.add(slot.index)
            for stream in self._on(slot):
                stream._attach()

    def on_frame(self, slot: WorkerSlot, frame: Frame) -> None:
        with self._lock:
            stream = self._streams.get(int(frame.header.get("s", -1)))
        if stream is not None:
            stream._on_frame(frame.header)

    def on_lost(self, slot: WorkerSlot, reason: LostReason) -> None:
        with self._lock:
            self._ready.discard(slot.index)
            streams = self._on(slot)
        for stream in streams:
            stream._detach(reason)

    def on_start_failed(self, slot: WorkerSlot, error: str) -> None:
        with self._lock:
            streams = self._on(slot)
        for stream in streams:
            stream._fail(AsrError(f"speech recognition worker could not be replaced: {error}"))

    def _on(self, slot: WorkerSlot) -> list[RemoteStream]:
        return [s for s in self._streams.values() if s.slot is slot]


@dataclass(slots=True)
class _Sent:
    seq: int
    arrived_s: float
    samples: int  # this chunk's samples plus those dropped before it
    media_ts_ms: int


class RemoteStream:
    def __init__(self, owner: RemoteDecoders, sid: int, slot: WorkerSlot, spec: StreamSpec,
                 grammar: Grammar | None, compile_grammar: Callable[[Sequence[str]], Grammar],
                 log: Any) -> None:
        self.sid = sid
        self.slot = slot
        self.spec = spec
        self.sample_rate_hz = spec.sample_rate_hz
        self.stats = StreamStats()
        self._owner = owner
        self._compile = compile_grammar
        self._log = log
        self._loop = asyncio.get_running_loop()
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._lock = threading.Lock()
        self._grammar = grammar
        self._seq = 0
        self._sent_seq = 0  # last chunk handed to the current worker
        self._pending: deque[_Sent] = deque()  # pushed, not yet answered
        self._held: list[bytes] = []  # frames waiting for a worker
        self._attached = False
        self._opened_once = False
        self._skip = 0  # samples dropped and not yet told to the worker
        self._base_samples = 0  # stream samples answered or lost so far
        self._end_requested = False
        self._end_sent = False
        self._closed = False
        self._in_speech = False
        self._last_ts_ms = 0
        self._lost_ms = 0
        self._losses: deque[float] = deque()

    # -- caller API (event loop) ---------------------------------------------------------------
    def push(self, chunk: AudioChunk) -> None:
        """Hand a chunk to the worker; never blocks. Overflow is dropped and counted."""
        if chunk.sample_rate_hz != self.sample_rate_hz:
            raise ValueError(
                f"chunk is {chunk.sample_rate_hz} Hz but the stream was opened at "
                f"{self.sample_rate_hz} Hz"
            )
        with self._lock:
            if self._closed or self._end_requested:
                raise StreamClosedError("push after end_input()/aclose()")
            if len(self._pending) >= self.spec.max_queue_chunks:
                self.stats.dropped_chunks += 1
                self._skip += chunk.n_samples
                dropped = self.stats.dropped_chunks
            else:
                self._seq += 1
                header = {"op": "a", "s": self.sid, "q": self._seq, "t": chunk.media_ts_ms}
                if self._skip:
                    header["k"] = self._skip
                self._pending.append(_Sent(self._seq, time.monotonic(),
                                           chunk.n_samples + self._skip, chunk.media_ts_ms))
                self._skip = 0
                self._send_locked(encode(header, chunk.pcm), work=1)
                dropped = 0
        if dropped and (dropped == 1 or dropped % 50 == 0):
            self._log.warning("asr_queue_full", dropped_chunks=dropped,
                              max_chunks=self.spec.max_queue_chunks)

    def set_grammar(self, phrases: Sequence[str] | None) -> None:
        """Restrict (or, with None, free) the vocabulary from the next utterance on.

        Raises ``GrammarVocabularyError`` when a phrase has words the model does not know.
        """
        grammar = None if phrases is None else self._compile(phrases)
        with self._lock:
            self._grammar = grammar
            if self._attached:
                self.slot.send(encode({"op": "g", "s": self.sid, **_grammar_fields(grammar)}))

    def end_input(self) -> None:
        """No more audio: the current utterance is finalized, then iteration ends."""
        with self._lock:
            if self._end_requested or self._closed:
                return
            self._end_requested = True
            if self._attached:
                self._send_end_locked()

    def __aiter__(self) -> RemoteStream:
        return self

    async def __anext__(self) -> StreamEvent:
        item = await self._out.get()
        if item is _END:
            self._out.put_nowait(_END)
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._out.put_nowait(_END)
            raise item
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Stop decoding: the worker drops this stream and its queued audio; iteration ends."""
        self._close(None)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- worker side (slot threads) ------------------------------------------------------------
    def _attach(self) -> None:
        """(Re)open on the slot's live worker: first open, or resume after a loss."""
        with self._lock:
            if self._closed or self._attached:
                return
            spec = self.spec
            self.slot.send(encode({
                "op": "open", "s": self.sid, "model": spec.model, "locale": spec.locale,
                "rate": spec.sample_rate_hz, "vad": spec.vad_aggressiveness,
                "silence_s": spec.silence_timeout_s,
                "grammar_silence_s": spec.grammar_silence_timeout_s,
                "nbest": spec.max_alternatives,
                "offset": self._base_samples,
                "ack_every": max(1, min(ACK_EVERY_MAX, spec.max_queue_chunks // 10)),
                **_grammar_fields(self._grammar),
            }))
            self._attached = True
            events: list[object] = []
            if self._opened_once:
                if self._in_speech:
                    events.append(SpeechActivity(type="speech_end", media_ts_ms=self._last_ts_ms))
                    self._in_speech = False
                events.append(AsrWorkerRestarted(media_ts_ms=self._last_ts_ms,
                                                 gap_ms=self._lost_ms, worker=self.slot.index))
                self._log.warning("asr_stream_resumed", worker=self.slot.index,
                                  gap_ms=self._lost_ms)
                self._lost_ms = 0
            self._opened_once = True
            held, self._held = self._held, []
            for data in held:
                self.slot.send(data, work=1)
            self._sent_seq = self._seq
            if self._end_requested:
                self._send_end_locked()
        if events:
            self._post(events, None)

    def _detach(self, reason: LostReason) -> None:
        """The worker is gone: what it held is lost; wait for the replacement (or give up)."""
        with self._lock:
            if self._closed or not self._attached:
                return
            self._attached = False
            self._end_sent = False
            lost = 0
            while self._pending and self._pending[0].seq <= self._sent_seq:
                lost += self._pending.popleft().samples
            self._base_samples += lost
            self._lost_ms += round(1000 * lost / self.sample_rate_hz)
            now = time.monotonic()
            self._losses.append(now)
            while self._losses and now - self._losses[0] > RESUME_WINDOW_S:
                self._losses.popleft()
            too_many = len(self._losses) > MAX_RESUMES
        self._log.warning("asr_worker_lost", worker=self.slot.index, reason=reason,
                          lost_ms=round(1000 * lost / self.sample_rate_hz))
        if too_many:
            self._fail(AsrError(f"speech recognition worker died {len(self._losses)} times in "
                                f"{RESUME_WINDOW_S:g} s while decoding this call ({reason})"))

    def _on_frame(self, h: dict[str, Any]) -> None:
        if h.get("op") == "err":
            self._fail(AsrError(str(h.get("message", "speech recognition failed"))))
            return
        events: list[object] = []
        with self._lock:
            if self._closed:
                return
            last, first = int(h.get("q", 0)), int(h.get("f", 0))
            answered, first_arrival = 0, None
            while self._pending and self._pending[0].seq <= last:
                sent = self._pending.popleft()
                answered += 1
                self._base_samples += sent.samples
                self._last_ts_ms = sent.media_ts_ms
                if sent.seq == first:
                    first_arrival = sent.arrived_s
            end = bool(h.get("end"))
            self.slot.settle(answered + (1 if end and self._end_sent else 0))
            self.stats.chunks_processed += answered
            decoded_from = None
            if h.get("d"):
                self.stats.decoder_calls += 1
                self.stats.chunks_decoded += int(h.get("n", 0))
                decoded_from = first_arrival
            for raw in h.get("ev", []):
                event = _event(raw)
                if isinstance(event, SpeechActivity):
                    self._in_speech = event.type == "speech_start"
                events.append(event)
            if end:
                self._closed = True
        if end:
            self._owner.forget(self.sid)
        if events or end or decoded_from is not None:
            self._post(events, _END if end else None, decoded_from)

    def _fail(self, exc: AsrError) -> None:
        self._log.error("asr_stream_failed", error=str(exc))
        self._close(exc)

    # -- helpers -------------------------------------------------------------------------------
    def _close(self, error: AsrError | None) -> None:
        with self._lock:
            if self._closed:
                already = True
            else:
                already = False
                self._closed = True
                if self._attached:
                    unanswered = sum(1 for s in self._pending if s.seq <= self._sent_seq)
                    self.slot.send(encode({"op": "close", "s": self.sid}))
                    self.slot.settle(unanswered + (1 if self._end_sent else 0))
                self._attached = False
                self._pending.clear()
                self._held.clear()
        self._owner.forget(self.sid)
        if not already:
            self._post([], error if error is not None else _END)

    def _send_locked(self, data: bytes, work: int) -> None:
        if self._attached:
            self.slot.send(data, work=work)  # False: the worker is dying, _detach follows
            self._sent_seq = self._seq
        else:
            self._held.append(data)

    def _send_end_locked(self) -> None:
        header: dict[str, Any] = {"op": "end", "s": self.sid}
        if self._skip:
            header["k"], self._skip = self._skip, 0
        self.slot.send(encode(header), work=1)
        self._end_sent = True

    def _post(self, events: list[object], tail: object,
              decoded_from: float | None = None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, events, tail, decoded_from)
        except RuntimeError:  # the stream's loop is closed: nobody is listening any more
            pass

    def _deliver(self, events: list[object], tail: object,
                 decoded_from: float | None = None) -> None:
        if decoded_from is not None:  # the result is on the loop now: that is the delay
            self.stats.result_delays_s.append(time.monotonic() - decoded_from)
        for event in events:
            self._out.put_nowait(event)
        if tail is not None:
            self._out.put_nowait(tail)


def _grammar_fields(grammar: Grammar | None) -> dict[str, Any]:
    if grammar is None:
        return {"grammar": None, "unk": False}
    return {"grammar": list(grammar.phrases), "unk": grammar.with_unk}


def _event(raw: dict[str, Any]) -> AsrEvent:
    if raw.get("type") == "transcript":
        return Transcript.model_validate(raw)
    return SpeechActivity.model_validate(raw)
