"""``RedisEventBus``: live call events shared by every node through one Redis stream.

``publish`` never waits: the event goes at once to this node's followers (an in-process
``EventBus``) and into an outbox that a writer task appends to the stream ``hotline:events``
(``XADD``, capped near ``max_len`` entries). A reader task follows the stream (``XREAD``
from the last entry it saw) and hands the other nodes' events to this node's followers, so
a desk or monitor connected to any node follows a call on any node.

Redis down or restarted: the call goes on and local followers miss nothing; the writer
keeps up to ``max_outbox`` events (older ones dropped and counted) and retries with
back-off, the reader reconnects and resumes after the last entry it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from contextlib import AbstractAsyncContextManager
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.call.bus import EventBus
from app.log import get_logger
from app.metrics import BUS_RECONNECTS

STREAM = "hotline:events"
_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)


class RedisEventBus:
    shared = True

    def __init__(self, url: str, node_id: str, *, stream: str = STREAM,
                 max_len: int = 100_000, max_outbox: int = 10_000,
                 block_ms: int = 1000) -> None:
        self.url = url
        self.node_id = node_id
        self.stream = stream
        self.max_len = max_len
        self.block_ms = block_ms
        self.local = EventBus()
        self.dropped = 0  # events that never reached Redis (outbox overflow)
        self.received = 0  # other nodes' events handed to this node's followers
        self._outbox: deque[str] = deque()
        self._max_outbox = max_outbox
        self._wake = asyncio.Event()
        self._client = redis.Redis.from_url(url, decode_responses=True,
                                            socket_connect_timeout=2,
                                            socket_timeout=block_ms / 1000 + 5)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False  # redis-py may turn a cancellation into a ConnectionError
        self._log = get_logger(component="redis_bus", node_id=node_id)

    # -- the LiveBus port ---------------------------------------------------------------------
    def publish(self, event: dict[str, Any]) -> None:
        self.local.publish(event)
        if len(self._outbox) >= self._max_outbox:
            self._outbox.popleft()
            self.dropped += 1
        self._outbox.append(json.dumps(event, ensure_ascii=False, default=str))
        self._wake.set()

    def subscribe(self, call_id: str | None = None
                  ) -> AbstractAsyncContextManager[asyncio.Queue[dict[str, Any]]]:
        return self.local.subscribe(call_id)

    # -- life ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the writer and the reader (they connect, and reconnect, by themselves)."""
        self._tasks = [asyncio.create_task(self._write(), name="redis-bus-writer"),
                       asyncio.create_task(self._read(), name="redis-bus-reader")]

    async def aclose(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks = []
        with contextlib.suppress(Exception):  # a Redis that is gone: nothing to close cleanly
            async with asyncio.timeout(5):
                await self._client.aclose()

    async def ping(self) -> str | None:
        """None when Redis answers, else why not."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            return f"Redis at {self.url} does not answer: {exc}"
        return None

    # -- tasks --------------------------------------------------------------------------------
    async def _write(self) -> None:
        failures = 0
        while not self._closing:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            batch = [self._outbox.popleft() for _ in range(min(500, len(self._outbox)))]
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for text in batch:
                        pipe.xadd(self.stream, {"origin": self.node_id, "event": text},
                                  maxlen=self.max_len, approximate=True)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                self._outbox.extendleft(reversed(batch))  # retried first, in order
                while len(self._outbox) > self._max_outbox:
                    self._outbox.popleft()
                    self.dropped += 1
                failures += 1
                await self._failed("redis_bus_write_failed", exc, failures)
                continue
            failures = 0

    async def _read(self) -> None:
        last_id: str | None = None
        failures = 0
        while not self._closing:
            try:
                if last_id is None:  # first connection: from now on
                    newest: Any = await self._client.xrevrange(self.stream, count=1)
                    last_id = str(newest[0][0]) if newest else "0-0"
                replies: Any = await self._client.xread({self.stream: last_id}, count=500,
                                                        block=self.block_ms)
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                failures += 1
                await self._failed("redis_bus_read_failed", exc, failures)
                continue
            if failures:
                self._log.warning("redis_bus_reconnected", after_failures=failures)
                failures = 0
            for _stream, entries in replies or []:
                for entry_id, fields in entries:
                    last_id = str(entry_id)
                    self._deliver(fields)

    def _deliver(self, fields: dict[str, str]) -> None:
        if fields.get("origin") == self.node_id:
            return  # this node's own events reached its followers when published
        try:
            event = json.loads(fields["event"])
        except (KeyError, ValueError) as exc:
            self._log.error("redis_bus_bad_entry", error=str(exc))
            return
        if isinstance(event, dict):
            self.received += 1
            self.local.publish(event)

    async def _failed(self, what: str, exc: BaseException, failures: int) -> None:
        BUS_RECONNECTS.inc()
        if failures == 1 or failures % 30 == 0:
            self._log.error(what, error=f"{type(exc).__name__}: {exc}", failures=failures,
                            outbox=len(self._outbox))
        with contextlib.suppress(Exception):  # drop half-dead connections: reconnect afresh
            async with asyncio.timeout(2):
                await self._client.connection_pool.disconnect()
        await asyncio.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S)) - 1])
