"""Where the routing service keeps its live state: small Protocols and in-process versions.

One node keeps presence, queues, offers and statistics in memory (these classes). Several
nodes will share them in Redis (a later issue): a Redis version implements the same four
Protocols, and ``RoutingService`` does not change. Values are immutable (frozen
dataclasses): a store hands them out and takes new ones back with ``put``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from app.routing.presence import AgentPresence
from app.routing.queue import Offer, QueueEntry

HANDLE_TIME_WINDOW = 50  # recent handle times kept per group for the wait estimate


class PresenceStore(Protocol):
    def get(self, agent_id: str) -> AgentPresence | None: ...
    def put(self, presence: AgentPresence) -> None: ...
    def snapshot(self) -> Mapping[str, AgentPresence]: ...


class QueueStore(Protocol):
    def get(self, call_id: str) -> QueueEntry | None: ...
    def put(self, entry: QueueEntry) -> None: ...
    def remove(self, call_id: str) -> QueueEntry | None: ...
    def waiting(self) -> Sequence[QueueEntry]: ...
    def next_seq(self) -> int: ...


class OfferStore(Protocol):
    def get(self, offer_id: str) -> Offer | None: ...
    def put(self, offer: Offer) -> None: ...
    def remove(self, offer_id: str) -> None: ...
    def pending(self) -> Iterable[Offer]: ...


class StatsStore(Protocol):
    def last_offered(self) -> Mapping[str, str]: ...
    def set_last_offered(self, group: str, agent_id: str) -> None: ...
    def handle_times(self, group: str) -> Sequence[float]: ...
    def add_handle_time(self, group: str, handle_s: float) -> None: ...


class MemoryPresence:
    def __init__(self, by_agent: Mapping[str, AgentPresence] | None = None) -> None:
        self._by_agent: dict[str, AgentPresence] = dict(by_agent or {})

    def get(self, agent_id: str) -> AgentPresence | None:
        return self._by_agent.get(agent_id)

    def put(self, presence: AgentPresence) -> None:
        self._by_agent[presence.agent_id] = presence

    def snapshot(self) -> Mapping[str, AgentPresence]:
        return dict(self._by_agent)


class MemoryQueues:
    def __init__(self, entries: Mapping[str, QueueEntry] | None = None, seq: int = 0) -> None:
        self._entries: dict[str, QueueEntry] = dict(entries or {})
        self._seq = seq

    def contents(self) -> tuple[dict[str, QueueEntry], int]:
        """The entries by call id (in arrival order) and the last arrival number."""
        return dict(self._entries), self._seq

    def get(self, call_id: str) -> QueueEntry | None:
        return self._entries.get(call_id)

    def put(self, entry: QueueEntry) -> None:
        self._entries[entry.call_id] = entry

    def remove(self, call_id: str) -> QueueEntry | None:
        return self._entries.pop(call_id, None)

    def waiting(self) -> Sequence[QueueEntry]:
        return list(self._entries.values())

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq


class MemoryOffers:
    def __init__(self, offers: Mapping[str, Offer] | None = None) -> None:
        self._offers: dict[str, Offer] = dict(offers or {})

    def contents(self) -> dict[str, Offer]:
        return dict(self._offers)

    def get(self, offer_id: str) -> Offer | None:
        return self._offers.get(offer_id)

    def put(self, offer: Offer) -> None:
        self._offers[offer.id] = offer

    def remove(self, offer_id: str) -> None:
        self._offers.pop(offer_id, None)

    def pending(self) -> Iterable[Offer]:
        return [o for o in self._offers.values() if o.state == "pending"]


class MemoryStats:
    def __init__(self, window: int = HANDLE_TIME_WINDOW, *,
                 last: Mapping[str, str] | None = None,
                 handle: Mapping[str, Iterable[float]] | None = None) -> None:
        self._last: dict[str, str] = dict(last or {})
        self._handle: dict[str, deque[float]] = {
            group: deque(times, maxlen=window) for group, times in (handle or {}).items()}
        self._window = window

    def all_handle_times(self) -> dict[str, tuple[float, ...]]:
        return {group: tuple(times) for group, times in self._handle.items()}

    def last_offered(self) -> Mapping[str, str]:
        return self._last

    def set_last_offered(self, group: str, agent_id: str) -> None:
        self._last[group] = agent_id

    def handle_times(self, group: str) -> Sequence[float]:
        return tuple(self._handle.get(group, ()))

    def add_handle_time(self, group: str, handle_s: float) -> None:
        self._handle.setdefault(group, deque(maxlen=self._window)).append(handle_s)
