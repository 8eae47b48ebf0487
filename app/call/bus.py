"""Live call events (the WebSocket feeds read from here): the ``LiveBus`` port and its
in-process version ``EventBus`` (one node). Several nodes share one through Redis
(``app.cluster.redis_bus``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol


class LiveBus(Protocol):
    """Publish call events; follow one call's (or every call's) events as they happen."""

    shared: bool  # True: events of calls on other nodes arrive too

    def publish(self, event: dict[str, Any]) -> None: ...

    def subscribe(self, call_id: str | None = None
                  ) -> AbstractAsyncContextManager[asyncio.Queue[dict[str, Any]]]: ...


class EventBus:
    """Publish a call's events (JSON-able dicts with ``type`` and ``call_id``) to subscribers.

    A subscriber that falls behind loses its oldest events (counted), never blocks a call.
    """

    shared = False  # this process's calls only

    def __init__(self, max_queue: int = 1000) -> None:
        self._subs: dict[asyncio.Queue[dict[str, Any]], str | None] = {}
        self._max_queue = max_queue
        self.dropped = 0

    def publish(self, event: dict[str, Any]) -> None:
        for queue, call_id in list(self._subs.items()):
            if call_id is not None and event.get("call_id") != call_id:
                continue
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, call_id: str | None = None) -> AsyncIterator[
        asyncio.Queue[dict[str, Any]]
    ]:
        """``async with bus.subscribe(call_id) as q: event = await q.get()``; None = all calls."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._max_queue)
        self._subs[queue] = call_id
        try:
            yield queue
        finally:
            self._subs.pop(queue, None)
