"""A pool of worker processes: forked from one zygote, watched, replaced when they die.

``WorkerPool(config, handler)`` keeps ``config.size`` workers running. Each worker slot has
one thread in the server that owns the worker's socket: it launches the worker (a fork from
the zygote, then the worker's ready frame), reads its frames and hands them to the
``handler``, flushes output that did not fit in the socket, and watches for a hang. When the
worker dies (its socket ends), or is killed because it had work outstanding and said nothing
for ``timeout_s``, the thread tells the handler (``on_lost``), reaps it and launches a
replacement (``on_ready``); a failed launch is retried with backoff (``on_start_failed``).

``WorkerSlot.send`` may be called from any thread (an event loop, typically): it never blocks,
whatever does not fit in the socket waits in the slot and is flushed by the slot's thread.
The pool is not tied to an event loop, so an engine built on it serves streams on any loop.
What a request is, and what a lost worker means for it, is the handler's business
(``app.workers.requests`` for request/response, ``app.asr.remote`` for pinned streams).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from app.log import get_logger
from app.workers.protocol import Frame, FrameParser, ProtocolError
from app.workers.zygote import WorkerStartError, Zygote

LostReason = Literal["crashed", "timeout", "protocol"]
STOP_WAIT_S = 3.0  # a worker gets this long to exit after its socket closes, then SIGKILL
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
STARVED_FACTOR = 4  # a silent worker that is still computing gets this many timeouts
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_READ_BYTES = 1 << 16

__all__ = ["LostReason", "PoolConfig", "PoolStats", "WorkerHandler", "WorkerPool",
           "WorkerSlot", "WorkerStartError"]


@dataclass
class PoolStats:
    requests: int = 0  # requests (or streams) handed to a worker
    spawns: int = 0
    restarts: int = 0  # spawns that replaced a dead, hung or killed worker
    timeouts: int = 0  # workers killed because they answered nothing for timeout_s
    crashes: int = 0  # workers that died on their own (or were killed from outside)
    dropped: int = 0  # work refused because a bounded queue was full


@dataclass(frozen=True)
class PoolConfig:
    name: str  # "asr", "tts": thread names and log lines
    size: int
    entry: str  # "module:function" each worker runs
    timeout_s: float  # a worker with work outstanding that says nothing this long is hung
    preload: str | None = None  # "module:function" the zygote runs once (e.g. loads models)
    preload_args: dict[str, Any] = field(default_factory=dict)
    start_timeout_s: float = 60.0
    scratch_dirs: bool = False  # each worker gets a folder, removed when the worker is gone


class WorkerHandler(Protocol):
    """Called from the slot's thread; must not block for long."""

    def on_ready(self, slot: WorkerSlot) -> None: ...

    def on_frame(self, slot: WorkerSlot, frame: Frame) -> None: ...

    def on_lost(self, slot: WorkerSlot, reason: LostReason) -> None: ...

    def on_start_failed(self, slot: WorkerSlot, error: str) -> None: ...


class WorkerSlot:
    """One worker position in the pool; its process changes when it is replaced."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.pid: int | None = None
        self.info: dict[str, Any] = {}  # the worker's ready frame
        self.ever_started = False
        self.work = 0  # units of work sent and not yet settled (the hang watchdog's input)
        self.busy_since_s = 0.0
        self.last_heard_s = 0.0
        self.cpu_seen_s: float | None = None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._pidfd: int | None = None
        self._out: deque[memoryview] = deque()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._kill_reason: LostReason | None = None
        self._thread: threading.Thread | None = None
        self.first_start = threading.Event()
        self.start_error: str | None = None

    @property
    def alive(self) -> bool:
        return self._sock is not None

    def send(self, data: bytes, work: int = 0) -> bool:
        """Queue ``data`` to the worker without blocking; False if it has no live worker."""
        with self._lock:
            sock = self._sock
            if sock is None:
                return False
            if work:
                if self.work == 0:
                    self.busy_since_s = time.monotonic()
                self.work += work
            if self._out:
                self._out.append(memoryview(data))
                return True
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return False  # the slot thread sees the end and reports the loss
            if sent < len(data):
                self._out.append(memoryview(data)[sent:])
                self._wake()
        return True

    def settle(self, work: int) -> None:
        """``work`` units sent earlier are answered."""
        with self._lock:
            self.work = max(0, self.work - work)

    def kill(self, reason: LostReason = "crashed") -> None:
        """Kill the worker now (its loss is reported with ``reason``)."""
        with self._lock:
            pidfd = self._pidfd
            if pidfd is None:
                return
            self._kill_reason = self._kill_reason or reason
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, ValueError, OSError):
            os.eventfd_write(self._wake_fd, 1)


class WorkerPool:
    def __init__(self, config: PoolConfig, handler: WorkerHandler) -> None:
        if config.size < 1:
            raise ValueError(f"a worker pool needs at least 1 worker, got {config.size}")
        self.config = config
        self.handler = handler
        self.stats = PoolStats()
        self.slots = [WorkerSlot(self, i) for i in range(config.size)]
        self.zygote = Zygote(config.name, config.entry, config.preload,
                             dict(config.preload_args), config.start_timeout_s)
        self._closing = threading.Event()
        self._started = False
        self._log = get_logger(component=f"{config.name}_workers")

    @property
    def pids(self) -> list[int | None]:
        return [s.pid if s.alive else None for s in self.slots]

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def start(self) -> None:
        """Start the zygote and every worker (blocking). Raises ``WorkerStartError``."""
        if self._started:
            raise RuntimeError(f"{self.config.name} worker pool already started")
        self._started = True
        try:
            self.zygote.start()
        except WorkerStartError:
            self.close()
            raise
        for slot in self.slots:
            slot._thread = threading.Thread(
                target=self._run, args=(slot,), name=f"{self.config.name}-worker-{slot.index}",
                daemon=True,
            )
            slot._thread.start()
        for slot in self.slots:
            slot.first_start.wait()
        failed = [s.start_error for s in self.slots if s.start_error is not None]
        if failed:
            self.close()
            raise WorkerStartError(failed[0])

    def close(self) -> None:
        """Stop every worker and the zygote (blocking, idempotent)."""
        self._closing.set()
        for slot in self.slots:
            slot._wake()
        for slot in self.slots:
            if slot._thread is not None and slot._thread is not threading.current_thread():
                slot._thread.join()
        self.zygote.close()
        for slot in self.slots:
            if slot._wake_fd >= 0:
                os.close(slot._wake_fd)
            slot._wake_fd = -1

    # -- the slot thread ---------------------------------------------------------------------
    def _run(self, slot: WorkerSlot) -> None:
        failures = 0
        while not self._closing.is_set():
            scratch = tempfile.mkdtemp(prefix=f"hotline-{self.config.name}-") \
                if self.config.scratch_dirs else None
            try:
                parser = self._launch(slot, scratch)
            except (WorkerStartError, OSError, ProtocolError) as exc:
                _remove(scratch)
                self._start_failed(slot, str(exc), failures)
                failures += 1
                continue
            failures = 0
            slot.first_start.set()
            self.handler.on_ready(slot)
            reason = self._serve(slot, parser)
            self._reap(slot, scratch)
            if reason is None:
                return  # the pool is closing
            if reason == "timeout":
                self.stats.timeouts += 1
            else:
                self.stats.crashes += 1
            self._log.warning("worker_lost", slot=slot.index, reason=reason)
            self.handler.on_lost(slot, reason)
        slot.first_start.set()

    def _start_failed(self, slot: WorkerSlot, error: str, failures: int) -> None:
        self._log.error("worker_start_failed", slot=slot.index, why=error)
        if not slot.first_start.is_set():
            slot.start_error = error
            slot.first_start.set()
        self.handler.on_start_failed(slot, error)
        self._closing.wait(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])

    def _launch(self, slot: WorkerSlot, scratch: str | None) -> FrameParser:
        sock, pid = self.zygote.fork(scratch)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            sock.close()
            raise
        parser = FrameParser()
        try:
            ready = self._first_frame(sock, parser, pid)
        except BaseException:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)
            sock.close()
            raise
        sock.setblocking(False)
        with slot._lock:
            slot._sock, slot._pidfd, slot.pid = sock, pidfd, pid
            slot.info = ready.header
            slot.work, slot._kill_reason = 0, None
            slot.last_heard_s = time.monotonic()
        self.stats.spawns += 1
        if slot.ever_started:
            self.stats.restarts += 1
        slot.ever_started = True
        self._log.info("worker_started", slot=slot.index, pid=pid)
        return parser

    def _first_frame(self, sock: socket.socket, parser: FrameParser, pid: int) -> Frame:
        deadline = time.monotonic() + self.config.start_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerStartError(f"{self.config.name} worker {pid} sent no ready frame "
                                       f"within {self.config.start_timeout_s:g} s")
            sock.settimeout(left)
            try:
                data = sock.recv(_READ_BYTES)
            except TimeoutError:
                continue
            if not data:
                raise WorkerStartError(f"{self.config.name} worker {pid} exited during start; "
                                       "its error is in the server log")
            frames = parser.feed(data)
            if frames:
                if not frames[0].header.get("ready") or len(frames) > 1:
                    raise WorkerStartError(f"{self.config.name} worker {pid} did not start: "
                                           f"{frames[0].header.get('message', frames[0].header)}")
                return frames[0]

    def _serve(self, slot: WorkerSlot, parser: FrameParser) -> LostReason | None:
        sock = slot._sock
        assert sock is not None
        poller = select.poll()
        poller.register(slot._wake_fd, select.POLLIN)
        poller.register(sock, select.POLLIN)
        tick_ms = max(10, min(500, int(self.config.timeout_s * 100)))
        while True:
            with slot._lock:
                want_out = bool(slot._out)
            poller.modify(sock, select.POLLIN | (select.POLLOUT if want_out else 0))
            events = poller.poll(tick_ms)
            if self._closing.is_set():
                return None
            for fd, mask in events:
                if fd == slot._wake_fd:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(slot._wake_fd)
                    continue
                if mask & select.POLLOUT:
                    self._flush(slot)
                if mask & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    lost = self._read(slot, sock, parser)
                    if lost is not None:
                        return lost
            self._watchdog(slot)

    def _read(self, slot: WorkerSlot, sock: socket.socket,
              parser: FrameParser) -> LostReason | None:
        try:
            data = sock.recv(_READ_BYTES)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            return slot._kill_reason or "crashed"
        slot.last_heard_s = time.monotonic()
        try:
            frames = parser.feed(data)
        except ProtocolError as exc:
            self._log.error("worker_protocol_error", slot=slot.index, why=str(exc))
            slot.kill("protocol")
            return None
        for frame in frames:
            self.handler.on_frame(slot, frame)
        return None

    def _flush(self, slot: WorkerSlot) -> None:
        with slot._lock:
            sock = slot._sock
            while slot._out and sock is not None:
                head = slot._out[0]
                try:
                    sent = sock.send(head)
                except (BlockingIOError, OSError):
                    return
                if sent < len(head):
                    slot._out[0] = head[sent:]
                    return
                slot._out.popleft()

    def _watchdog(self, slot: WorkerSlot) -> None:
        """Kill a worker that has work, has said nothing for ``timeout_s`` and is not computing.

        A worker still using CPU is given up to ``STARVED_FACTOR`` times longer: on an
        overloaded machine a busy worker is slow, not hung (killing it would lose more).
        """
        silent_s = time.monotonic() - max(slot.busy_since_s, slot.last_heard_s)
        if slot.work <= 0 or silent_s <= self.config.timeout_s:
            slot.cpu_seen_s = None
            return
        cpu_s = _cpu_s(slot.pid)
        computing = cpu_s is not None and slot.cpu_seen_s is not None and cpu_s > slot.cpu_seen_s
        first_look = slot.cpu_seen_s is None
        slot.cpu_seen_s = cpu_s
        if first_look or (computing and silent_s <= STARVED_FACTOR * self.config.timeout_s):
            return
        self._log.warning("worker_hung", slot=slot.index, pid=slot.pid, computing=computing,
                          silent_s=round(silent_s, 1), timeout_s=self.config.timeout_s)
        slot.kill("timeout")

    def _reap(self, slot: WorkerSlot, scratch: str | None) -> None:
        with slot._lock:
            sock, slot._sock = slot._sock, None
            pidfd = slot._pidfd
            slot._out.clear()
            slot.work = 0
        if sock is not None:
            sock.close()  # a live worker reads the end of input and exits
        if pidfd is not None:
            ready, _, _ = select.select([pidfd], [], [], STOP_WAIT_S)
            if not ready:
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                select.select([pidfd], [], [], STOP_WAIT_S)
            with slot._lock:
                slot._pidfd = None
            os.close(pidfd)
        _remove(scratch)


def _cpu_s(pid: int | None) -> float | None:
    """CPU seconds the process has used (user + system), None if it is gone."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _remove(path: str | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
