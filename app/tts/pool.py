"""The synthesis workers: ``app.tts.worker`` processes behind the generic request pool.

Spawning, restarting, the per-request timeout, the bounded queue and the framed protocol are
``app.workers``'; this module only says what a synthesis request and its answer look like and
turns the pool's failures into ``TtsError`` values with a reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.media.audio import Pcm
from app.tts.errors import TtsError
from app.workers.pool import PoolConfig, PoolStats, WorkerStartError
from app.workers.requests import RequestError, RequestPool

DEFAULT_WORKER_ENTRY = "app.tts.worker:main"
PRELOAD = "app.tts.worker:preload"
START_TIMEOUT_S = 30.0  # a cold interpreter + pyttsx3 + pypinyin on a busy box

__all__ = ["DEFAULT_WORKER_ENTRY", "PoolStats", "WorkerPool"]


@dataclass
class WorkerPool:
    """``size`` synthesis processes behind one queue of at most ``queue_max`` requests."""

    size: int
    timeout_s: float
    queue_max: int
    entry: str = DEFAULT_WORKER_ENTRY
    _requests: RequestPool | None = field(default=None, init=False)
    _stats: PoolStats = field(default_factory=PoolStats, init=False)

    @property
    def stats(self) -> PoolStats:
        return self._requests.stats if self._requests is not None else self._stats

    @property
    def pids(self) -> list[int | None]:
        return self._requests.pids if self._requests is not None else []

    @property
    def voices(self) -> list[dict[str, Any]]:
        return list(self._ready_info().get("voices", []))

    @property
    def native_rate_hz(self) -> int:
        return int(self._ready_info().get("sample_rate_hz", 22_050))

    def _ready_info(self) -> dict[str, Any]:
        if self._requests is None:
            return {}
        return next((s.info for s in self._requests.pool.slots if s.info), {})

    async def start(self) -> None:
        config = PoolConfig(
            name="tts", size=self.size, entry=self.entry, timeout_s=self.timeout_s,
            preload=PRELOAD, start_timeout_s=max(self.timeout_s, START_TIMEOUT_S),
            scratch_dirs=True,
        )
        requests = RequestPool(config, self.queue_max)
        try:
            await asyncio.to_thread(requests.start)
        except WorkerStartError as exc:
            raise TtsError(
                "worker_failed", f"speech worker (pyttsx3 + espeak-ng) did not start: {exc}; "
                "is the espeak-ng package (libespeak-ng1) installed?"
            ) from None
        self._requests = requests

    async def aclose(self) -> None:
        requests, self._requests = self._requests, None
        if requests is not None:
            self._stats = requests.stats
            await asyncio.to_thread(requests.close)

    async def render(self, text: str, voice: str, rate_wpm: int) -> Pcm:
        """One request; the answer is PCM at the worker's native rate."""
        requests = self._requests
        if requests is None:
            raise TtsError("closed", "speech synthesis is not running (call start() first)")
        try:
            answer = await requests.request({"text": text, "voice": voice, "rate_wpm": rate_wpm})
        except RequestError as exc:
            raise _tts_error(exc, self.timeout_s) from None
        if not answer.header.get("ok"):
            raise TtsError("worker_failed", str(answer.header.get("message", "synthesis failed")))
        return Pcm(answer.payload, int(answer.header["sample_rate_hz"]))


def _tts_error(exc: RequestError, timeout_s: float) -> TtsError:
    if exc.reason == "timeout":
        return TtsError("timeout", f"speech synthesis took longer than {timeout_s:g} s; "
                        "the worker was replaced")
    if exc.reason == "crashed":
        return TtsError("worker_failed", f"speech worker died twice: {exc}")
    if exc.reason == "overloaded":
        return TtsError("overloaded", str(exc))
    if exc.reason == "closed":
        return TtsError("closed", "speech synthesis stopped")
    return TtsError("worker_failed", f"speech synthesis failed: {exc}")
