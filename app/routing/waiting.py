"""Waiting for a human: the caller's queue, hold audio and position announcements.

Until agents are connected (the routing engine), every wait ends at the max wait and the
flow goes on with a ``queue_timeout`` input (its voicemail or callback offer). The session
hands a ``Transfer`` action to ``QueueWait.run``; the caller hanging up while queued is the
session's ``abandoned`` outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from app.call.eventlog import CallEventLog
from app.call.media import CallMedia
from app.call.player import Player
from app.call.recorder import Recorder
from app.events import utc_now
from app.flows.runtime import CallerInput, Transfer
from app.media.hold import HoldMusic
from app.record import QueuePosition, QueueTimeout


class QueueBoard:
    """Who waits in which queue, in order (in-process; shared state when scaled out)."""

    def __init__(self) -> None:
        self._queues: dict[str, list[str]] = {}
        self._where: dict[str, str] = {}

    def join(self, queue: str, call_id: str) -> int:
        self.leave(call_id)
        self._queues.setdefault(queue, []).append(call_id)
        self._where[call_id] = queue
        return len(self._queues[queue])

    def leave(self, call_id: str) -> None:
        queue = self._where.pop(call_id, None)
        if queue is not None:
            self._queues[queue].remove(call_id)

    def position(self, call_id: str) -> int:
        """1-based place in its queue; 0 when not queued."""
        queue = self._where.get(call_id)
        return 0 if queue is None else self._queues[queue].index(call_id) + 1

    def sizes(self) -> dict[str, int]:
        return {q: len(c) for q, c in self._queues.items() if c}

    def waiting(self) -> dict[str, list[str]]:
        """Each non-empty queue's callers (call ids), first in line first."""
        return {q: list(c) for q, c in self._queues.items() if c}


class QueueWait:
    """One caller's wait in one queue (hold audio between position announcements)."""

    def __init__(self, call_id: str, board: QueueBoard, media: CallMedia, player: Player,
                 recorder: Recorder | None, events: CallEventLog, *, max_wait_s: float,
                 position_every_s: float, position_text: Callable[[int], tuple[str, str]],
                 clock: Callable[[], datetime] = utc_now) -> None:
        """``position_text(n)`` -> (text, locale) announcing place ``n``."""
        self.call_id = call_id
        self.board = board
        self.media = media
        self.player = player
        self.recorder = recorder
        self.events = events
        self.max_wait_s = max_wait_s
        self.position_every_s = position_every_s
        self.position_text = position_text
        self.clock = clock

    async def run(self, action: Transfer) -> CallerInput:
        self.board.join(action.queue, self.call_id)
        hold = HoldMusic(self.media.sample_rate_hz)
        started = time.monotonic()
        next_position = started
        try:
            while time.monotonic() - started < self.max_wait_s:
                if time.monotonic() >= next_position:
                    n = self.board.position(self.call_id)
                    text, locale = self.position_text(n)
                    if text:
                        await self.player.say_quietly(text, locale)
                    self.events.emit(QueuePosition(queue=action.queue, position=n))
                    next_position = time.monotonic() + self.position_every_s
                chunk = hold.next_chunk()
                if self.recorder is not None:
                    self.recorder.bot(chunk)
                await self.media.play(chunk)
        finally:
            self.board.leave(self.call_id)
        self.events.emit(QueueTimeout(queue=action.queue,
                                      waited_s=round(time.monotonic() - started, 1)))
        return CallerInput(kind="queue_timeout", at=self.clock())
