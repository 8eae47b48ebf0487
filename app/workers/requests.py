"""Request/response over a worker pool: one request per worker at a time, one bounded queue.

``await RequestPool.request(header, payload)`` from any event loop returns the worker's answer
frame. A request waits in the queue (at most ``queue_max``; beyond that it is refused with
reason ``overloaded`` and counted) until a worker is free. When the worker dies mid-request,
the request is sent once more to its replacement (a second death fails it: ``crashed``); when
it says nothing for ``timeout_s`` it is killed, replaced, and the request fails (``timeout``:
it would hang again). A caller that gives up (cancelled) has its answer dropped, and the
worker's ids keep request and answer paired, so nothing gets out of step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from app.workers.pool import LostReason, PoolConfig, PoolStats, WorkerPool, WorkerSlot
from app.workers.protocol import Frame, encode

RequestFailure = Literal["overloaded", "closed", "timeout", "crashed", "start_failed"]


class RequestError(Exception):
    def __init__(self, reason: RequestFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Job:
    header: dict[str, Any]
    payload: bytes
    future: concurrent.futures.Future[Frame]
    attempts: int = 0
    request_id: int = 0


class RequestPool:
    def __init__(self, config: PoolConfig, queue_max: int) -> None:
        self.queue_max = queue_max
        self.pool = WorkerPool(config, self)
        self._lock = threading.Lock()
        self._queue: deque[_Job] = deque()
        self._busy: dict[int, _Job] = {}
        self._ready: set[int] = set()
        self._lost: dict[int, tuple[_Job, LostReason]] = {}
        self._next_id = 0
        self._closed = False

    @property
    def stats(self) -> PoolStats:
        return self.pool.stats

    @property
    def pids(self) -> list[int | None]:
        return self.pool.pids

    def start(self) -> None:
        self.pool.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            jobs = list(self._queue) + list(self._busy.values())
            jobs += [job for job, _ in self._lost.values()]
            self._queue.clear()
            self._busy.clear()
            self._lost.clear()
        for job in jobs:
            _fail(job, RequestError("closed", f"{self.pool.config.name} workers stopped"))
        self.pool.close()

    async def request(self, header: dict[str, Any], payload: bytes = b"") -> Frame:
        return await asyncio.wrap_future(self.submit(header, payload))

    def submit(self, header: dict[str, Any], payload: bytes = b"") -> concurrent.futures.Future[
            Frame]:
        job = _Job(header, payload, concurrent.futures.Future())
        with self._lock:
            if self._closed:
                raise RequestError("closed", f"{self.pool.config.name} workers are not running")
            free = [i for i in sorted(self._ready) if i not in self._busy]
            if free:
                self._dispatch(self.pool.slots[free[0]], job)
            elif len(self._queue) >= self.queue_max:
                self.pool.stats.dropped += 1
                raise RequestError("overloaded", f"{self.queue_max} {self.pool.config.name} "
                                   "requests already waiting")
            else:
                self._queue.append(job)
        return job.future

    # -- WorkerHandler (slot threads) ----------------------------------------------------------
    def on_ready(self, slot: WorkerSlot) -> None:
        with self._lock:
            self._ready.add(slot.index)
            lost = self._lost.pop(slot.index, None)
            if lost is not None:
                job, reason = lost
                if reason == "timeout":
                    _fail(job, RequestError("timeout", "the worker answered nothing for "
                          f"{self.pool.config.timeout_s:g} s and was replaced"))
                elif job.attempts >= 2:
                    _fail(job, RequestError("crashed", f"the worker died twice ({reason})"))
                else:
                    self._dispatch(slot, job)
                    return
            self._next_locked(slot)

    def on_frame(self, slot: WorkerSlot, frame: Frame) -> None:
        slot.settle(1)
        with self._lock:
            job = self._busy.get(slot.index)
            if job is None or frame.header.get("id") != job.request_id:
                slot.kill("protocol")
                return
            del self._busy[slot.index]
            if not job.future.done():
                try:
                    job.future.set_result(frame)
                except concurrent.futures.InvalidStateError:
                    pass  # cancelled meanwhile: the answer is dropped
            self._next_locked(slot)

    def on_lost(self, slot: WorkerSlot, reason: LostReason) -> None:
        with self._lock:
            self._ready.discard(slot.index)
            job = self._busy.pop(slot.index, None)
            if job is not None:
                self._lost[slot.index] = (job, reason)

    def on_start_failed(self, slot: WorkerSlot, error: str) -> None:
        with self._lock:
            lost = self._lost.pop(slot.index, None)
        if lost is not None:
            _fail(lost[0], RequestError("start_failed", f"the worker could not be replaced: "
                                        f"{error}"))

    # -- under the lock ------------------------------------------------------------------------
    def _next_locked(self, slot: WorkerSlot) -> None:
        while self._queue and slot.index not in self._busy:
            job = self._queue.popleft()
            if not job.future.cancelled():
                self._dispatch(slot, job)

    def _dispatch(self, slot: WorkerSlot, job: _Job) -> None:
        self._next_id += 1
        job.request_id = self._next_id
        job.attempts += 1
        self._busy[slot.index] = job
        self.pool.stats.requests += 1
        # a failed send means the worker is dying: its loss brings the job back (on_lost)
        slot.send(encode({**job.header, "id": job.request_id}, job.payload), work=1)


def _fail(job: _Job, error: RequestError) -> None:
    if not job.future.done():
        try:
            job.future.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass
