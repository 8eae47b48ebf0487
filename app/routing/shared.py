"""The routing's live state for one node or shared by several: ``RoutingState``.

``RoutingService`` stays pure and synchronous; what changes between one node and several is
where its four stores live and how one operation is isolated from the others:

- ``LocalState`` (one node, ``make run``): the service keeps its in-memory stores; ``run(op)``
  calls ``op(service)`` at once. Nothing is copied, events go out as the service emits them:
  exactly the single-process behaviour, at no extra cost.
- ``RedisState`` (``redis_url``): presence, queue entries, offers and statistics are hashes
  of JSON values in Redis (``app.routing.codec``, versioned), plus the queue's arrival
  counter, a revision number and an epoch (a random id the state's first write sets: a
  Redis restarted empty has none, then a new one, so a node's copy of the old state is
  never taken for the new one, whatever revision the new one has reached). ``run(op)`` is
  one transaction: take the routing lock
  (``redis.asyncio.lock.Lock`` with a ttl, so a dead node holds it at most ``lock_ttl_s``),
  load the state into ``Memory*`` stores (or reuse this node's copy when the revision and
  epoch did not move), run ``op`` on the service, write back only the values that changed
  plus the new revision in one ``MULTI`` (``WATCH`` on both: if the lock ran out and another
  node committed meanwhile, nothing is written and ``SharedStateError`` is raised), release.
  The events ``op`` produced are delivered after the commit, never for a change that was
  not stored.

Values are frozen: the service replaces a value it changes, so "changed" is "not the same
object as loaded" (no re-serialization of what did not change).

Redis unreachable or the lock not obtained in ``lock_wait_s``: ``run`` raises
``SharedStateError``; the caller decides (see ``app.handoff.live``). A state value this node
cannot read (a newer format) is skipped with a log line and counted, never crashes a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import redis.asyncio as redis
from redis.asyncio.lock import Lock
from redis.exceptions import ConnectionError, LockError, RedisError, WatchError

from app.log import get_logger
from app.routing import codec
from app.routing.events import RoutingEvent
from app.routing.presence import AgentPresence
from app.routing.queue import Offer, QueueEntry
from app.routing.service import RoutingService
from app.routing.state import MemoryOffers, MemoryPresence, MemoryQueues, MemoryStats

T = TypeVar("T")
PREFIX = "hotline:routing"
_HASHES = ("presence", "queue", "offers", "last", "handle")


class SharedStateError(RuntimeError):
    """The shared routing state could not be read or written (Redis down, lock not had)."""


class _StaleConnection(Exception):
    """A connection error before anything was sent for commit: safe to try once more."""


class RoutingState(Protocol):
    """Runs one routing operation on the live state, isolated from every other one."""

    shared: bool

    async def run(self, op: Callable[[RoutingService], T]) -> T: ...
    async def refresh(self) -> None: ...
    async def aclose(self) -> None: ...


class LocalState:
    """One node: the service's own in-memory stores; ``run`` is a plain call."""

    shared = False

    def __init__(self, service: RoutingService) -> None:
        self.service = service

    async def run(self, op: Callable[[RoutingService], T]) -> T:
        return op(self.service)

    async def refresh(self) -> None:
        return None  # the stores are the state

    async def aclose(self) -> None:
        return None


@dataclass
class Snapshot:
    """The state as loaded (raw revision and decoded values), to diff against after ``op``."""

    rev: int
    epoch: str = ""  # the stored state's identity (random, set by its first write; "" none)
    presence: dict[str, AgentPresence] = field(default_factory=dict)
    queue: dict[str, QueueEntry] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    last: dict[str, str] = field(default_factory=dict)
    handle: dict[str, tuple[float, ...]] = field(default_factory=dict)
    seq: int = 0


@dataclass
class TxnFigures:
    """Counters a bench or the metrics read."""

    runs: int = 0
    reloads: int = 0
    conflicts: int = 0
    failures: int = 0
    bad_values: int = 0
    decoded: int = 0  # values parsed (the others were known by their text)
    resets: int = 0  # the state went back (a Redis restarted empty)
    lock_wait_s: float = 0.0


class RedisState:
    """Several nodes: the routing state in Redis, one locked transaction per operation."""

    shared = True

    def __init__(self, service: RoutingService, url: str, node_id: str, *,
                 prefix: str = PREFIX, lock_ttl_s: float = 5.0, lock_wait_s: float = 5.0,
                 client: redis.Redis | None = None) -> None:
        self.service = service
        self.node_id = node_id
        self.prefix = prefix
        self.lock_ttl_s = lock_ttl_s
        self.lock_wait_s = lock_wait_s
        self.figures = TxnFigures()
        self._client = client or redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5)
        self._cache: Snapshot | None = None
        self._seen: Snapshot | None = None  # the last state read or written (kept when the
        # copy is dropped): a reset is told to ``on_reset`` with it, to rebuild from
        self.on_reset: Callable[[Snapshot], None] | None = None
        self._decoded: dict[str, dict[str, tuple[str, Any]]] = {}  # hash -> key -> (text, value)
        self._log = get_logger(component="routing_state", node_id=node_id)

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    async def aclose(self) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(5):
                await self._client.aclose()

    # -- the transaction ----------------------------------------------------------------------
    async def run(self, op: Callable[[RoutingService], T]) -> T:
        lock = Lock(self._client, self.key("lock"), timeout=self.lock_ttl_s,
                    blocking_timeout=self.lock_wait_s)
        started = time.monotonic()
        await self._acquire(lock)
        self.figures.lock_wait_s += time.monotonic() - started
        try:
            return await self._locked(op)
        finally:
            try:
                await lock.release()
            except (LockError, RedisError) as exc:  # ran out meanwhile, or Redis went away
                self._log.warning("routing_lock_release_failed", error=repr(exc))

    async def _acquire(self, lock: Lock) -> None:
        """Take the routing lock; a connection error is tried once more on fresh
        connections (the pool's may all be from before a Redis restart)."""
        for fresh in (False, True):
            try:
                if await lock.acquire():
                    return
                self.figures.failures += 1
                raise SharedStateError(f"routing lock not obtained in {self.lock_wait_s} s")
            except ConnectionError as exc:
                if not fresh:
                    await self._drop_connections()
                    continue
                self.figures.failures += 1
                raise SharedStateError(f"routing state unreachable: {exc}") from exc
            except RedisError as exc:
                self.figures.failures += 1
                raise SharedStateError(f"routing state unreachable: {exc}") from exc

    async def _drop_connections(self) -> None:
        """Close the pooled connections (after a Redis restart they are all dead)."""
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(2):
                await self._client.connection_pool.disconnect()

    async def _locked(self, op: Callable[[RoutingService], T]) -> T:
        try:
            return await self._attempt(op)
        except _StaleConnection:  # a pooled connection from before a Redis restart
            await self._drop_connections()
            return await self._attempt(op, retry=False)

    async def _attempt(self, op: Callable[[RoutingService], T], retry: bool = True) -> T:
        events: list[RoutingEvent] = []
        sent = False
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                await pipe.watch(self.key("rev"), self.key("epoch"))
                snap = await self._load(pipe)
                stores = self._install(snap)
                publish = self.service._publish
                self.service._publish = events.append
                try:
                    result = op(self.service)
                except BaseException:
                    self._install(snap)  # reads between operations see the stored state
                    raise
                finally:
                    self.service._publish = publish
                pipe.multi()  # type: ignore[no-untyped-call]
                after = self._write(pipe, snap, *stores)
                sent = True
                await pipe.execute()
        except WatchError as exc:
            self.figures.conflicts += 1
            self._cache = None
            raise SharedStateError("routing state changed under this node (its lock ran "
                                   "out): nothing written") from exc
        except RedisError as exc:
            self._cache = None
            if retry and not sent and isinstance(exc, ConnectionError):
                raise _StaleConnection from exc
            self.figures.failures += 1
            raise SharedStateError(f"routing state unreachable: {exc}") from exc
        except BaseException:
            self._cache = None  # op failed: the stores hold half a change, never reuse them
            raise
        self._cache = self._seen = after
        self.figures.runs += 1
        if publish is not None:
            for event in events:
                publish(event)
        return result

    async def refresh(self) -> None:
        """Bring this node's copy up to date for reads (the monitor, a desk's view), without
        the lock and without writing: one atomic read of the revision and, when it moved,
        the values. ``SharedStateError`` when Redis is unreachable (the copy stays)."""
        runs = self.figures.runs
        try:
            if self._cache is not None and self._current(
                    *await self._client.mget(self.key("rev"), self.key("epoch"))):
                return
            reader = self._client.pipeline(transaction=True)
            reader.get(self.key("rev"))
            reader.get(self.key("epoch"))
            values = await self._read_all(reader)
        except RedisError as exc:
            self.figures.failures += 1
            if isinstance(exc, ConnectionError):  # the next read on fresh connections
                await self._drop_connections()
            raise SharedStateError(f"routing state unreachable: {exc}") from exc
        if self.figures.runs != runs:
            return  # a transaction committed meanwhile: its copy is at least as fresh
        self._cache = self._snapshot(int(values[0] or 0), values[1] or "", values[2:])
        self._install(self._cache)

    async def _read_all(self, reader: Any) -> list[Any]:
        for name in _HASHES:
            reader.hgetall(self.key(name))
        reader.get(self.key("seq"))
        return list(await reader.execute())

    async def _load(self, pipe: Any) -> Snapshot:
        raw_rev, raw_epoch = await pipe.mget(self.key("rev"), self.key("epoch"))
        if self._cache is not None and self._current(raw_rev, raw_epoch):
            return self._cache
        # After WATCH the pipeline runs commands at once; read them all in one round trip.
        return self._snapshot(int(raw_rev or 0), raw_epoch or "", await self._read_all(
            self._client.pipeline(transaction=True)))

    def _current(self, raw_rev: Any, raw_epoch: Any) -> bool:
        """Whether this node's copy is the stored state (same epoch, same revision)."""
        cache = self._cache
        return cache is not None and cache.rev == int(raw_rev or 0) \
            and cache.epoch == (raw_epoch or "")

    def _snapshot(self, rev: int, epoch: str, values: list[Any]) -> Snapshot:
        """The state decoded from the hashes as read (``_HASHES`` then ``seq``)."""
        before = self._seen
        if before is not None and before.epoch and (epoch != before.epoch or rev < before.rev):
            # Redis restarted without its data (its epoch is gone or new, whatever its
            # revision has reached since): what the nodes knew is gone (to rebuild).
            self.figures.resets += 1
            self._log.warning("routing_state_reset", rev=rev, had_rev=before.rev,
                              epoch=epoch or None, had_epoch=before.epoch)
            if self.on_reset is not None:
                self.on_reset(before)
        self.figures.reloads += 1
        presence, queue, offers, last, handle, seq = values
        snap = Snapshot(rev=rev, epoch=epoch, seq=int(seq or 0), last=dict(last))
        snap.presence = self._decode(presence, codec.load_presence, "presence")
        entries = self._decode(queue, codec.load_entry, "queue")
        # In arrival order, as the in-process store iterates them (Redis hashes have none).
        snap.queue = dict(sorted(entries.items(), key=lambda kv: kv[1].seq))
        loaded = self._decode(offers, codec.load_offer, "offers")
        snap.offers = dict(sorted(loaded.items(), key=lambda kv: (kv[1].created_at, kv[0])))
        snap.handle = {g: tuple(v) for g, v in
                       self._decode(handle, codec.load_handle_times, "handle").items()}
        self._seen = snap
        return snap

    def _decode(self, raw: dict[str, str], load: Callable[[str, str], T], name: str
                ) -> dict[str, T]:
        """Decode a hash; a value whose text this node decoded before is reused (only what
        other nodes changed is parsed again)."""
        seen = self._decoded.setdefault(name, {})
        out: dict[str, T] = {}
        fresh: dict[str, tuple[str, Any]] = {}
        for key, value in raw.items():
            known = seen.get(key)
            if known is not None and known[0] == value:
                out[key] = fresh.setdefault(key, known)[1]
                continue
            try:
                out[key] = load(value, f"{self.key(name)}[{key}]")
            except ValueError as exc:
                self.figures.bad_values += 1
                self._log.error("routing_state_unreadable", key=key, error=str(exc))
                continue
            self.figures.decoded += 1
            fresh[key] = (value, out[key])
        self._decoded[name] = fresh
        return out

    def _install(self, snap: Snapshot
                 ) -> tuple[MemoryPresence, MemoryQueues, MemoryOffers, MemoryStats]:
        presence = MemoryPresence(snap.presence)
        queues = MemoryQueues(snap.queue, snap.seq)
        offers = MemoryOffers(snap.offers)
        stats = MemoryStats(last=snap.last, handle=snap.handle)
        self.service.presence, self.service.queues = presence, queues
        self.service.offers, self.service.stats = offers, stats
        return presence, queues, offers, stats

    def _write(self, pipe: Any, snap: Snapshot, presence: MemoryPresence,
               queues: MemoryQueues, offers: MemoryOffers, stats: MemoryStats) -> Snapshot:
        """Queue the changed values on ``pipe`` (in MULTI); the snapshot after the commit."""
        entries, seq = queues.contents()
        after = Snapshot(rev=snap.rev + 1, epoch=snap.epoch or uuid.uuid4().hex,
                         presence=dict(presence.snapshot()), queue=entries,
                         offers=offers.contents(), last=dict(stats.last_offered()), seq=seq,
                         handle=stats.all_handle_times())
        _diff(pipe, self.key("presence"), snap.presence, after.presence, codec.dump_presence)
        _diff(pipe, self.key("queue"), snap.queue, after.queue, codec.dump_entry)
        _diff(pipe, self.key("offers"), snap.offers, after.offers, codec.dump_offer)
        changed_last = {g: a for g, a in after.last.items() if snap.last.get(g) != a}
        if changed_last:
            pipe.hset(self.key("last"), mapping=changed_last)
        changed_handle = {g: codec.dump_handle_times(list(t)) for g, t in after.handle.items()
                          if snap.handle.get(g) != t}
        if changed_handle:
            pipe.hset(self.key("handle"), mapping=changed_handle)
        if after.seq != snap.seq:
            pipe.set(self.key("seq"), after.seq)
        pipe.set(self.key("rev"), after.rev)
        if after.epoch != snap.epoch:  # the first write of this state: it gets its identity
            pipe.set(self.key("epoch"), after.epoch)
        return after


def _diff(pipe: Any, key: str, before: dict[str, Any], after: dict[str, Any],
          dump: Callable[[Any], str]) -> None:
    changed = {k: dump(v) for k, v in after.items() if before.get(k) is not v}
    gone = [k for k in before if k not in after]
    if changed:
        pipe.hset(key, mapping=changed)
    if gone:
        pipe.hdel(key, *gone)
