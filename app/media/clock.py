"""One 20 ms clock for every RTP leg on the event loop.

A leg per task would cost a timer and a task wake-up per leg every 20 ms; with the shared clock
one task wakes and calls each leg's ``tick(now, late)`` in turn (send a frame, hand on a
received one). The schedule is a ``Pacer`` (anchored, no drift, late ticks counted). The task
runs while at least one leg is registered and is cancelled with the last one.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

from app.events import FRAME_MS
from app.media.playout import Pacer
from app.metrics import LATE_FRAMES


class Ticking(Protocol):
    def tick(self, now: float, late: bool) -> None: ...


class MediaClock:
    _clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock] = (
        weakref.WeakKeyDictionary())

    def __init__(self) -> None:
        self._legs: dict[int, Ticking] = {}
        self._task: asyncio.Task[None] | None = None
        self._pacer = Pacer(FRAME_MS)
        self.ticks = 0

    @classmethod
    def for_loop(cls) -> MediaClock:
        loop = asyncio.get_running_loop()
        clock = cls._clocks.get(loop)
        if clock is None:
            clock = cls._clocks[loop] = cls()
        return clock

    def add(self, leg: Ticking) -> None:
        self._legs[id(leg)] = leg
        if self._task is None or self._task.done():
            self._pacer = Pacer(FRAME_MS)
            self._task = asyncio.create_task(self._run(), name="media-clock")

    def remove(self, leg: Ticking) -> None:
        self._legs.pop(id(leg), None)
        if not self._legs and self._task is not None:
            if self._task is not asyncio.current_task():
                self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._legs:
            before = self._pacer.late_frames
            await self._pacer.tick()
            late = self._pacer.late_frames != before
            if late:
                LATE_FRAMES.inc()
            now = loop.time()
            self.ticks += 1
            for leg in list(self._legs.values()):
                leg.tick(now, late)
