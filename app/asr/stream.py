"""The loop side of a per-call recognizer stream: bounded input queue, pool scheduling, results.

``push`` never blocks: chunks go into a bounded deque (overflow is counted and dropped). At
most one decoding job per stream is in flight in the shared pool, so a stream's recognizer is
only ever used by one thread; a job takes the whole backlog (up to ``MAX_BATCH_CHUNKS``) and
decodes it in one call, then re-queues itself behind the other streams' jobs if more arrived.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from app.asr.decoder import AsrEvent, UtteranceDecoder
from app.asr.errors import AsrError
from app.asr.grammar import Grammar
from app.events import AudioChunk

MAX_BATCH_CHUNKS = 10  # at most 200 ms of 20 ms chunks per decoder call (bounds latency)
_END = object()


class StreamClosedError(AsrError, RuntimeError):
    """push/end_input on a stream whose input has ended or that was closed."""


@dataclass(slots=True)
class StreamStats:
    """Counters a caller (metrics, bench) may read; written by the pool thread."""

    dropped_chunks: int = 0
    chunks_processed: int = 0  # chunks through VAD (decoded or skipped as silence)
    decoder_calls: int = 0
    chunks_decoded: int = 0
    # seconds from the oldest chunk of a decoded batch being pushed to its results reaching the
    # event loop
    result_delays_s: deque[float] = field(default_factory=lambda: deque(maxlen=5000))


@dataclass(slots=True)
class _Item:
    chunk: AudioChunk
    arrived_s: float
    gap_samples: int = 0  # samples dropped right after this chunk (queue overflow)


class RecognizerStream:
    def __init__(self, *, decoder: UtteranceDecoder, executor: Executor,
                 compile_grammar: Any, sample_rate_hz: int, max_queue_chunks: int,
                 log: Any) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.stats = StreamStats()
        self._decoder = decoder
        self._executor = executor
        self._compile = compile_grammar
        self._max_queue = max_queue_chunks
        self._log = log
        self._loop = asyncio.get_running_loop()
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._lock = threading.Lock()
        self._queue: deque[_Item] = deque()
        self._busy = False
        self._future: Future[None] | None = None
        self._prepare = True
        self._end_requested = False
        self._end_done = False
        self._closed = False
        self._pending_grammar: tuple[Grammar | None] | None = None
        with self._lock:
            self._schedule_locked()

    # -- caller API (event loop) ---------------------------------------------------------------
    def push(self, chunk: AudioChunk) -> None:
        """Queue a chunk for decoding; never blocks. Overflow is dropped and counted."""
        if chunk.sample_rate_hz != self.sample_rate_hz:
            raise ValueError(
                f"chunk is {chunk.sample_rate_hz} Hz but the stream was opened at "
                f"{self.sample_rate_hz} Hz"
            )
        with self._lock:
            if self._closed or self._end_requested:
                raise StreamClosedError("push after end_input()/aclose()")
            if len(self._queue) >= self._max_queue:
                self.stats.dropped_chunks += 1
                self._queue[-1].gap_samples += chunk.n_samples
                dropped = self.stats.dropped_chunks
            else:
                self._queue.append(_Item(chunk, time.monotonic()))
                dropped = 0
                if not self._busy:
                    self._schedule_locked()
        if dropped and (dropped == 1 or dropped % 50 == 0):
            self._log.warning("asr_queue_full", dropped_chunks=dropped, max_chunks=self._max_queue)

    def set_grammar(self, phrases: Sequence[str] | None) -> None:
        """Restrict (or, with None, free) the vocabulary from the next utterance on.

        Raises ``GrammarVocabularyError`` when a phrase has words the model does not know.
        """
        grammar = None if phrases is None else self._compile(phrases)
        with self._lock:
            self._pending_grammar = (grammar,)

    def end_input(self) -> None:
        """No more audio: the current utterance is finalized, then iteration ends."""
        with self._lock:
            if self._end_requested or self._closed:
                return
            self._end_requested = True
            if not self._busy:
                self._schedule_locked()

    def __aiter__(self) -> RecognizerStream:
        return self

    async def __anext__(self) -> AsrEvent:
        item = await self._out.get()
        if item is _END:
            self._out.put_nowait(_END)  # later calls keep ending
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._out.put_nowait(_END)
            raise item
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Stop decoding, drop queued audio, wait for the in-flight job, end iteration."""
        with self._lock:
            self._closed = True
            self._queue.clear()
        while True:
            fut = self._future
            if fut is None or fut.done():
                break
            await asyncio.wrap_future(fut)
        self._decoder.release()
        self._out.put_nowait(_END)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- pool side -----------------------------------------------------------------------------
    def _schedule_locked(self) -> None:
        self._busy = True
        try:
            self._future = self._executor.submit(self._job)
        except RuntimeError as exc:  # executor shut down
            self._busy = False
            self._closed = True
            self._loop.call_soon_threadsafe(self._deliver, [], AsrError(f"ASR pool closed: {exc}"))

    def _job(self) -> None:
        try:
            self._run_once()
        except Exception as exc:  # delivered to the consumer as the stream's error
            with self._lock:
                self._closed = True
                self._busy = False
                self._queue.clear()
            self._post([], AsrError(f"speech recognition failed: {exc!r}"))
            self._log.error("asr_stream_failed", error=repr(exc))
            return
        with self._lock:
            more = bool(self._queue) or (self._end_requested and not self._end_done)
            if more and not self._closed:
                self._schedule_locked()
            else:
                self._busy = False

    def _run_once(self) -> None:
        with self._lock:
            if self._closed:
                return
            n = min(len(self._queue), MAX_BATCH_CHUNKS)
            items = [self._queue.popleft() for _ in range(n)]
            end = self._end_requested and not self._queue
            pending, self._pending_grammar = self._pending_grammar, None
            prepare, self._prepare = self._prepare, False
        if pending is not None:
            self._decoder.grammar = pending[0]
        if prepare:
            self._decoder.prepare()
        events = self._decoder.process([(i.chunk, i.gap_samples) for i in items], end)
        self.stats.chunks_processed += len(items)
        decoded_from = None
        if self._decoder.decoded_audio and items:
            self.stats.decoder_calls += 1
            self.stats.chunks_decoded += len(items)
            decoded_from = items[0].arrived_s
        if end:
            self._end_done = True
        if events or end or decoded_from is not None:
            self._post(events, _END if end else None, decoded_from)

    def _post(self, events: list[AsrEvent], tail: object,
              decoded_from: float | None = None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, events, tail, decoded_from)
        except RuntimeError:  # loop closed: nobody is listening any more
            pass

    def _deliver(self, events: list[AsrEvent], tail: object,
                 decoded_from: float | None = None) -> None:
        if decoded_from is not None:  # the result is on the loop now: that is the delay
            self.stats.result_delays_s.append(time.monotonic() - decoded_from)
        for event in events:
            self._out.put_nowait(event)
        if tail is not None:
            self._out.put_nowait(tail)
