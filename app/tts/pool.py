"""Parent side of the synthesis workers: spawn, queue, time out, restart.

Each worker is a child Python process (``app.tts.worker``) talked to over asyncio subprocess
pipes: reads and writes are non-blocking on the event loop, a timeout is ``asyncio.wait_for``
and a hung worker is killed by its pid. A fresh interpreter (not a fork of the server, which
holds torch and Vosk threads) imports only pyttsx3 and pypinyin.

Requests wait in one bounded queue; each worker slot is a task that takes the next request,
so a caller that gives up (cancelled stream, caller hung up) never desynchronises a pipe:
the slot still reads the answer and drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

from app.log import get_logger
from app.media.audio import Pcm
from app.settings import PROJECT_ROOT
from app.tts.errors import TtsError

DEFAULT_WORKER_ENTRY = "app.tts.worker:main"
_PIPE_LIMIT_BYTES = 1 << 20
GRACEFUL_STOP_S = 2.0
START_TIMEOUT_S = 30.0  # a cold interpreter + pyttsx3 + pypinyin on a busy box



@dataclass
class PoolStats:
    requests: int = 0  # requests sent to a worker process
    spawns: int = 0
    restarts: int = 0  # spawns that replaced a dead, hung or killed worker
    timeouts: int = 0
    crashes: int = 0
    dropped: int = 0  # refused because the queue was full


@dataclass
class _Job:
    text: str
    voice: str
    rate_wpm: int
    future: asyncio.Future[Pcm]


@dataclass
class _Slot:
    index: int
    proc: asyncio.subprocess.Process | None = None
    work_dir: str | None = None  # the worker's scratch folder, removed when it stops
    ever_started: bool = False
    next_id: int = 0
    job: _Job | None = None


class _WorkerDied(Exception):
    pass


@dataclass
class WorkerPool:
    """``size`` worker processes behind one queue of at most ``queue_max`` waiting requests."""

    size: int
    timeout_s: float
    queue_max: int
    entry: str = DEFAULT_WORKER_ENTRY
    stats: PoolStats = field(default_factory=PoolStats)
    voices: list[dict[str, Any]] = field(default_factory=list)
    native_rate_hz: int = 22_050
    _queue: asyncio.Queue[_Job] | None = None
    _slots: list[_Slot] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pids(self) -> list[int | None]:
        return [s.proc.pid if s.proc and s.proc.returncode is None else None for s in self._slots]

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.queue_max)
        self._slots = [_Slot(i) for i in range(self.size)]
        try:
            await asyncio.gather(*(self._spawn(slot) for slot in self._slots))
        except BaseException:
            await self.aclose()
            raise
        self._tasks = [
            asyncio.create_task(self._run(slot), name=f"tts-worker-{slot.index}")
            for slot in self._slots
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for slot in self._slots:
            if slot.job is not None and not slot.job.future.done():
                slot.job.future.set_exception(TtsError("closed", "speech synthesis stopped"))
            slot.job = None
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.set_exception(TtsError("closed", "speech synthesis stopped"))
            self._queue = None
        for slot in self._slots:
            await self._stop(slot)

    async def render(self, text: str, voice: str, rate_wpm: int) -> Pcm:
        """Queue one request; the answer is PCM at the worker's native rate."""
        if self._queue is None:
            raise TtsError("closed", "speech synthesis is not running (call start() first)")
        job = _Job(text, voice, rate_wpm, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            raise TtsError(
                "overloaded", f"{self.queue_max} synthesis requests already waiting"
            ) from None
        return await job.future

    # -- worker slots

    async def _run(self, slot: _Slot) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            if job.future.done():  # its caller gave up while it waited
                continue
            slot.job = job
            try:
                _settle(job, await self._attempt_twice(slot, job))
            except TtsError as exc:
                _settle(job, exc)
            except Exception as exc:  # the slot must outlive any one request: no I/O here
                _settle(job, TtsError("worker_failed", f"speech synthesis failed: {exc!r}"))
                await self._stop(slot)
            finally:
                slot.job = None

    async def _attempt_twice(self, slot: _Slot, job: _Job) -> Pcm:
        """A crash is retried once on a fresh worker; a timeout is not (it would hang again)."""
        for attempt in (1, 2):
            if slot.proc is None or slot.proc.returncode is not None:
                await self._spawn(slot)
            try:
                return await asyncio.wait_for(self._roundtrip(slot, job), self.timeout_s)
            except TimeoutError:
                self.stats.timeouts += 1
                get_logger().warning(
                    "tts_worker_timeout", slot=slot.index, timeout_s=self.timeout_s
                )
                await self._stop(slot)
                await self._respawn_quietly(slot)
                raise TtsError(
                    "timeout", f"speech synthesis took longer than {self.timeout_s:g} s; "
                    "the worker was replaced"
                ) from None
            except _WorkerDied as exc:
                self.stats.crashes += 1
                get_logger().warning(
                    "tts_worker_died", slot=slot.index, attempt=attempt, why=str(exc)
                )
                await self._stop(slot)
                if attempt == 2:
                    await self._respawn_quietly(slot)
                    raise TtsError("worker_failed", f"speech worker died twice: {exc}") from None
        raise AssertionError("unreachable")

    async def _roundtrip(self, slot: _Slot, job: _Job) -> Pcm:
        proc = slot.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        slot.next_id += 1
        req = {"id": slot.next_id, "text": job.text, "voice": job.voice, "rate_wpm": job.rate_wpm}
        self.stats.requests += 1
        try:
            proc.stdin.write(json.dumps(req, ensure_ascii=False).encode() + b"\n")
            await proc.stdin.drain()
            header = await self._read_header(proc)
            if not header.get("ok"):
                raise TtsError("worker_failed", str(header.get("message", "synthesis failed")))
            data = await proc.stdout.readexactly(int(header["n_bytes"]))
        except (BrokenPipeError, ConnectionResetError, asyncio.IncompleteReadError) as exc:
            raise _WorkerDied(f"{type(exc).__name__}; exit code {await _exit_code(proc)}") from exc
        if header.get("id") != slot.next_id:
            raise _WorkerDied(f"answer {header.get('id')} to request {slot.next_id}")
        return Pcm(data, int(header["sample_rate_hz"]))

    async def _read_header(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise _WorkerDied(f"worker closed its output; exit code {await _exit_code(proc)}")
        try:
            header = json.loads(line)
        except ValueError as exc:
            raise _WorkerDied(f"unreadable answer {line[:80]!r}") from exc
        if not isinstance(header, dict):
            raise _WorkerDied(f"unreadable answer {line[:80]!r}")
        return header

    async def _spawn(self, slot: _Slot) -> None:
        module, func = self.entry.split(":")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        slot.work_dir = tempfile.mkdtemp(prefix="hotline-tts-")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"from {module} import {func}; {func}()", slot.work_dir,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=env, limit=_PIPE_LIMIT_BYTES,
        )
        slot.proc = proc
        try:
            ready = await asyncio.wait_for(
                self._read_header(proc), max(self.timeout_s, START_TIMEOUT_S)
            )
        except (TimeoutError, _WorkerDied) as exc:
            await self._stop(slot)
            why = "did not start in time" if isinstance(exc, TimeoutError) else str(exc)
            raise TtsError(
                "worker_failed", f"speech worker (pyttsx3 + espeak-ng) {why}; is the "
                "espeak-ng package (libespeak-ng1) installed?"
            ) from None
        self.stats.spawns += 1
        if slot.ever_started:
            self.stats.restarts += 1
        slot.ever_started = True
        self.voices = list(ready.get("voices", []))
        self.native_rate_hz = int(ready.get("sample_rate_hz", self.native_rate_hz))
        get_logger().info("tts_worker_started", slot=slot.index, pid=proc.pid)

    async def _respawn_quietly(self, slot: _Slot) -> None:
        """Replace a failed worker now; if that fails too, the next request retries it."""
        try:
            await self._spawn(slot)
        except TtsError as exc:
            get_logger().error("tts_worker_respawn_failed", slot=slot.index, why=str(exc))

    async def _stop(self, slot: _Slot, graceful: bool = False) -> None:
        """End a worker: on close, EOF then a short wait; otherwise (hung, dead) kill it."""
        proc, slot.proc = slot.proc, None
        work_dir, slot.work_dir = slot.work_dir, None
        if proc is not None:
            if graceful and proc.returncode is None and proc.stdin is not None:
                proc.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), GRACEFUL_STOP_S)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
        if work_dir is not None:
            await asyncio.to_thread(shutil.rmtree, work_dir, True)


def _settle(job: _Job, outcome: Pcm | TtsError) -> None:
    if job.future.done():  # the caller gave up; its answer is dropped
        return
    if isinstance(outcome, TtsError):
        job.future.set_exception(outcome)
    else:
        job.future.set_result(outcome)


async def _exit_code(proc: asyncio.subprocess.Process) -> int | None:
    try:
        return await asyncio.wait_for(proc.wait(), 1.0)
    except TimeoutError:
        return None
