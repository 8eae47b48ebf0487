"""Leader election for cluster-wide singletons: which one node runs a job that must run on
one node only (today: the lost-node finalizer sweep of ``NodeLiveness``).

``Leadership`` is the port. ``LocalLeadership``: one node (``make run``, no Redis), it always
leads. ``RedisLeadership``: a lease in Redis (``SET key token NX PX ttl``), renewed every
ttl/3 by a compare-token-then-``PEXPIRE`` script. The node leads only while it can prove it:
a renewal that fails or is refused, or ``ttl`` passed since the last renewal was sent, and it
stops leading at once (its leader-only jobs are cancelled). A non-leader tries to acquire
every ttl/3. ``aclose`` (stop, drain) deletes the key if it still holds it
(compare-token-then-``DEL``), so a successor takes over at its next try, not after the ttl.

The lease's validity is counted from the moment the request that set or renewed it was
*sent*, so the node stops believing it leads no later than Redis lets the key expire: two
leaders at once need a node paused longer than the ttl between reading ``leading`` and
acting on it. Jobs run by the leader must still be safe to run twice (the finalizer takes
each lost node's row ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.log import get_logger
from app.metrics import CLUSTER_LEADER

T = TypeVar("T")
LEADER_KEY = "hotline:leader"

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leadership(Protocol):
    node_id: str

    @property
    def leading(self) -> bool:
        """True while this node leads (and can prove it)."""

    @property
    def leader_id(self) -> str | None:
        """The node that leads, as last seen (None: unknown, e.g. Redis unreachable)."""

    async def start(self) -> None: ...

    async def aclose(self) -> None:
        """Stop; give leadership up at once if this node holds it."""

    async def run_if_leading(self, job: Callable[[], Coroutine[Any, Any, T]]) -> T | None:
        """Run ``job`` if this node leads; cancel it if leadership is lost meanwhile.
        None when not run or cancelled."""


class LocalLeadership:
    """One node: it always leads."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._closed = False

    @property
    def leading(self) -> bool:
        return not self._closed

    @property
    def leader_id(self) -> str | None:
        return None if self._closed else self.node_id

    async def start(self) -> None:
        CLUSTER_LEADER.labels(self.node_id).set(1)

    async def aclose(self) -> None:
        self._closed = True
        CLUSTER_LEADER.labels(self.node_id).set(0)

    async def run_if_leading(self, job: Callable[[], Coroutine[Any, Any, T]]) -> T | None:
        return await job() if self.leading else None


class RedisLeadership:
    """A lease in Redis under ``key``, held for ``ttl_s`` and renewed every ttl/3."""

    def __init__(self, url: str, node_id: str, *, ttl_s: float = 10.0,
                 key: str = LEADER_KEY) -> None:
        if ttl_s <= 0:
            raise ValueError(f"leader ttl_s must be > 0, got {ttl_s}")
        self.node_id = node_id
        self.url = url
        self.key = key
        self.ttl_s = ttl_s
        self.every_s = ttl_s / 3
        self.acquired = 0  # times this node became leader
        self.renewals = 0  # successful renewals
        self._token = f"{node_id}:{uuid.uuid4().hex}"
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._valid_until: float | None = None  # loop time; None: not leading
        self._leader_id: str | None = None
        self._lost = asyncio.Event()  # set when a term ends (wakes run_if_leading)
        self._client = redis.Redis.from_url(url, decode_responses=True,
                                            socket_connect_timeout=min(1.0, self.every_s),
                                            socket_timeout=min(2.0, self.every_s))
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._log = get_logger(component="leader", node_id=node_id)

    # -- state --------------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        return (self._valid_until is not None
                and asyncio.get_running_loop().time() < self._valid_until)

    @property
    def leader_id(self) -> str | None:
        return self.node_id if self.leading else self._leader_id

    # -- life ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """One acquisition attempt now (a lone node leads before its first sweep), then the
        renew/acquire loop."""
        CLUSTER_LEADER.labels(self.node_id).set(0)
        await self._step()
        self._task = asyncio.create_task(self._run(), name=f"leader-{self.node_id}")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        held = self._valid_until is not None
        self._step_down("closed")
        if held:  # hand over at once: the successor does not wait for the ttl
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await self._release(keys=[self.key], args=[self._token])
        with contextlib.suppress(Exception):  # a Redis that is gone: nothing to close cleanly
            async with asyncio.timeout(2):
                await self._client.aclose()

    def stop_renewing(self) -> None:
        """Stop the renew loop without releasing (what a hung or killed node does); for
        failure tests. The node stops leading when its lease runs out."""
        if self._task is not None:
            self._task.cancel()

    async def run_if_leading(self, job: Callable[[], Coroutine[Any, Any, T]]) -> T | None:
        if not self.leading:
            return None
        task = asyncio.create_task(job())
        waiter = asyncio.create_task(self._until_lost(self._lost))
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, waiter, return_exceptions=True)
        if task.cancelled():
            self._log.warning("leader_job_cancelled", reason="leadership lost")
            return None
        return task.result()

    async def _until_lost(self, lost: asyncio.Event) -> None:
        """Returns when this term ends: stepped down, or the lease ran out unrenewed (even
        if the renew loop is gone)."""
        while not lost.is_set() and self._valid_until is not None and self.leading:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(self._valid_until):
                    await lost.wait()

    # -- the loop -----------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wake_at = loop.time() + self.every_s
            if self._valid_until is not None:
                wake_at = min(wake_at, self._valid_until)  # step down at expiry, not later
            await asyncio.sleep(max(0.0, wake_at - loop.time()))
            try:
                await self._step()
            except Exception as exc:  # a bug, not Redis: never lead on an unproven lease
                self._step_down(f"leader loop failed: {type(exc).__name__}: {exc}")
                self._log.exception("leader_loop_failed")

    async def _step(self) -> None:
        """Renew when leading, else try to acquire; never raises (Redis down: not leading)."""
        loop = asyncio.get_running_loop()
        if self._valid_until is not None and not self.leading:
            self._step_down("lease expired before renewal")
        sent_at = loop.time()
        limit_at = self._valid_until if self._valid_until is not None else (
            sent_at + self.every_s)
        try:
            async with asyncio.timeout_at(limit_at):
                if self._valid_until is not None:
                    renewed = await self._renew(keys=[self.key],
                                                args=[self._token, self._ttl_ms])
                    if renewed != 1:
                        self._step_down("renewal refused: the lease is someone else's")
                        return
                    self._valid_until = sent_at + self.ttl_s
                    self.renewals += 1
                    return
                await self._acquire(sent_at)
        except (RedisError, OSError, TimeoutError) as exc:
            if self._valid_until is not None:
                self._step_down(f"renewal failed: {type(exc).__name__}: {exc}")
            self._leader_id = None
            with contextlib.suppress(Exception):  # drop half-dead connections
                async with asyncio.timeout(1):
                    await self._client.connection_pool.disconnect()

    async def _acquire(self, sent_at: float) -> None:
        got: Any = await self._client.set(self.key, self._token, nx=True, px=self._ttl_ms)
        holder: Any = None
        if not got:
            holder = await self._client.get(self.key)
            if holder == self._token:  # its own lease, left after a failed renewal: re-prove it
                got = await self._renew(keys=[self.key], args=[self._token, self._ttl_ms]) == 1
        if got:
            self._valid_until = sent_at + self.ttl_s
            self._leader_id = self.node_id
            self._lost = asyncio.Event()
            self.acquired += 1
            CLUSTER_LEADER.labels(self.node_id).set(1)
            self._log.warning("leader_acquired", ttl_s=self.ttl_s)
            return
        self._leader_id = str(holder).rsplit(":", 1)[0] if holder else None

    def _step_down(self, reason: str) -> None:
        if self._valid_until is None:
            return
        self._valid_until = None
        self._leader_id = None
        self._lost.set()
        CLUSTER_LEADER.labels(self.node_id).set(0)
        self._log.warning("leader_lost", reason=reason)
