"""The agents' desks: who is connected and what each is shown.

``DeskHub`` fans messages out to each agent's open desk WebSocket(s) (JSON objects with a
``type``: ``offer``, ``offer_ended``, ``agent_state``, ``connected``, ``call_event``...). A desk
that falls behind loses its oldest messages, never blocks a call. ``watching(agent)`` is the
calls an agent is offered or on: the desk WebSocket forwards those calls' live events
(transcript of both sides, sentiment, hold, hand-back results).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

MAX_QUEUE = 500


class DeskHub:
    def __init__(self, on_last_gone: Callable[[str], None] | None = None) -> None:
        self._conns: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._watch: dict[str, set[str]] = {}  # agent -> call ids
        self.on_last_gone = on_last_gone
        self.dropped = 0

    def send(self, agent_id: str, message: dict[str, Any]) -> None:
        self.send_local(agent_id, message)

    def send_local(self, agent_id: str, message: dict[str, Any]) -> None:
        """To the desks connected to this node (``send``: wherever they are)."""
        for queue in list(self._conns.get(agent_id, ())):
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(message)

    def connected(self, agent_id: str) -> bool:
        return bool(self._conns.get(agent_id))

    @asynccontextmanager
    async def connect(self, agent_id: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUE)
        self._conns.setdefault(agent_id, set()).add(queue)
        try:
            yield queue
        finally:
            left = self._conns.get(agent_id, set())
            left.discard(queue)
            if not left:
                self._conns.pop(agent_id, None)
                if self.on_last_gone is not None:
                    self.on_last_gone(agent_id)

    def watch(self, agent_id: str, call_id: str) -> None:
        self._watch.setdefault(agent_id, set()).add(call_id)

    def unwatch(self, agent_id: str, call_id: str) -> None:
        self._watch.get(agent_id, set()).discard(call_id)

    def watching(self, agent_id: str) -> frozenset[str]:
        return frozenset(self._watch.get(agent_id, ()))
