"""Who waits in which queue, in order (in-process; Redis when scaled out, with routing)."""

from __future__ import annotations


class QueueBoard:
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
