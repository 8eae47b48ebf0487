"""A call's append-only event log: published live, written to the database in order."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from app.call.bus import EventBus
from app.events import utc_now
from app.log import get_logger
from app.metrics import EVENT_WRITE_FAILURES


class EventSink(Protocol):
    def append_event(self, call_id: str, event: dict[str, Any], at: Any) -> int: ...


class CallEventLog:
    """``emit()`` never blocks the call: events go to the live bus at once and to the
    database through one writer task, so they are stored in the order they happened."""

    def __init__(self, call_id: str, sink: EventSink, bus: EventBus) -> None:
        self.call_id = call_id
        self._sink = sink
        self._bus = bus
        self._queue: asyncio.Queue[tuple[dict[str, Any], Any] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._log = get_logger(call_id=call_id)
        self.write_failures = 0
        self.history: list[dict[str, Any]] = []
        self._seq = 0

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"eventlog-{self.call_id}")

    def emit(self, type_: str, **payload: Any) -> dict[str, Any]:
        at = utc_now()
        self._seq += 1
        event = {"type": type_, "call_id": self.call_id, "seq": self._seq, "at": at.isoformat(),
                 **payload}
        self.history.append(event)
        self._bus.publish(event)
        self._queue.put_nowait((event, at))
        return event

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            event, at = item
            stored = {k: v for k, v in event.items() if k not in ("call_id", "at", "seq")}
            try:
                await asyncio.to_thread(self._sink.append_event, self.call_id, stored, at)
            except Exception as exc:  # the call goes on; the failure is counted and logged
                self.write_failures += 1
                EVENT_WRITE_FAILURES.inc()
                self._log.error("event_write_failed", event_type=event["type"], error=str(exc))

    async def close(self) -> None:
        """Write everything emitted so far, then stop the writer."""
        if self._writer is None:
            return
        self._queue.put_nowait(None)
        await asyncio.shield(self._writer)
        self._writer = None
