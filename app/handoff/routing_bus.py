"""``RoutingBus``: what the nodes' live routings tell each other through Redis pub/sub.

Three kinds of message, each a JSON object with the sending node (``from``):
- ``events`` on ``hotline:routing:events``: the routing events of one committed transaction
  (``app.routing.shared.RedisState``), so the node that holds a call records them and rings
  its offers, and every node shows agents' state changes on its desks;
- ``desk`` on ``hotline:desk``: a desk message (``send``) or a watch change for an agent;
  each node hands it to the desks connected to it (a desk may be on any node);
- ``request``/``reply`` on ``hotline:node:{node_id}``: a desk action for an offer or a call
  held by another node (answer with the desk's SDP, decline), answered by that node.

Publishing never waits (an outbox and a writer task, like ``RedisEventBus``); a request
waits for its reply with a timeout. Pub/sub is at-most-once: a message sent while Redis is
down is lost after the outbox's retries; the routing state itself is in Redis (the timer's
next tick re-rings nothing, but a lost ``events`` message leaves an offer to its ring
timeout), which is why the state, not these messages, is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.handoff.desk import DeskHub
from app.log import get_logger

EVENTS = "hotline:routing:events"
DESK = "hotline:desk"
_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)

Handler = Callable[[dict[str, Any]], None]
RequestHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class RemoteError(RuntimeError):
    """A request another node refused (``status``/``detail`` as the desk API answers) or
    that got no reply in time (status 504)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RoutingBus:
    def __init__(self, url: str, node_id: str, *, max_outbox: int = 10_000) -> None:
        self.node_id = node_id
        self.on_events: Handler | None = None
        self.on_desk: Handler | None = None
        self.on_request: RequestHandler | None = None
        # subscribed again after a lost connection: what was published meanwhile is lost
        # (pub/sub is at most once), so the owner catches up from the state
        self.on_resubscribed: Callable[[], None] | None = None
        self.dropped = 0
        self._client = redis.Redis.from_url(url, decode_responses=True,
                                            socket_connect_timeout=2, socket_timeout=10)
        self._outbox: deque[tuple[str, str]] = deque()
        self._max_outbox = max_outbox
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False
        self._log = get_logger(component="routing_bus", node_id=node_id)

    def channel(self, node_id: str) -> str:
        return f"hotline:node:{node_id}"

    # -- life ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write(), name="routing-bus-writer"),
                       asyncio.create_task(self._read(), name="routing-bus-reader")]

    @property
    def subscribed(self) -> bool:
        """Whether this node receives the other nodes' messages now."""
        return self._ready.is_set()

    async def ready(self, timeout_s: float = 10) -> None:
        """Subscribed (messages sent from now on reach this node)."""
        async with asyncio.timeout(timeout_s):
            await self._ready.wait()

    async def aclose(self) -> None:
        self._closing = True
        for task in (*self._tasks, *self._handlers):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._handlers, return_exceptions=True)
        for future in self._replies.values():
            future.cancel()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._client.aclose()

    # -- sending --------------------------------------------------------------------------------
    def publish(self, channel: str, message: dict[str, Any]) -> None:
        if len(self._outbox) >= self._max_outbox:
            self._outbox.popleft()
            self.dropped += 1
        text = json.dumps({"from": self.node_id, **message}, ensure_ascii=False, default=str)
        self._outbox.append((channel, text))
        self._wake.set()

    def events(self, events: list[dict[str, Any]]) -> None:
        self.publish(EVENTS, {"kind": "events", "events": events})

    def desk(self, op: str, agent_id: str, **fields: Any) -> None:
        self.publish(DESK, {"kind": "desk", "op": op, "agent": agent_id, **fields})

    async def request(self, node_id: str, method: str, args: dict[str, Any],
                      timeout_s: float = 10.0) -> Any:
        """Ask ``node_id`` to run ``method``; its result, or ``RemoteError``."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        self.publish(self.channel(node_id), {"kind": "request", "id": request_id,
                                             "method": method, "args": args})
        try:
            async with asyncio.timeout(timeout_s):
                reply = await future
        except TimeoutError as exc:
            raise RemoteError(504, f"node {node_id} did not answer {method} in "
                              f"{timeout_s:.0f} s") from exc
        finally:
            self._replies.pop(request_id, None)
        if not reply.get("ok"):
            raise RemoteError(int(reply.get("status") or 502), str(reply.get("detail")))
        return reply.get("result")

    # -- tasks ----------------------------------------------------------------------------------
    async def _write(self) -> None:
        failures = 0
        while not self._closing:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            channel, text = self._outbox[0]
            try:
                await self._client.publish(channel, text)
            except (RedisError, OSError) as exc:
                failures += 1
                await self._failed("routing_bus_write_failed", exc, failures)
                continue
            self._outbox.popleft()
            failures = 0

    async def _read(self) -> None:
        failures = 0
        while not self._closing:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(EVENTS, DESK, self.channel(self.node_id))
                self._ready.set()
                if failures and self.on_resubscribed is not None:
                    self.on_resubscribed()
                failures = 0
                while not self._closing:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._deliver(str(message["channel"]), str(message["data"]))
            except (RedisError, OSError) as exc:
                self._ready.clear()
                failures += 1
                await self._failed("routing_bus_read_failed", exc, failures)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _deliver(self, channel: str, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError as exc:
            self._log.error("routing_bus_bad_message", channel=channel, error=str(exc))
            return
        if not isinstance(message, dict) or message.get("from") == self.node_id \
                and channel != self.channel(self.node_id):
            return  # this node's own broadcast: handled locally when sent
        kind = message.get("kind")
        try:
            if kind == "events" and self.on_events is not None:
                self.on_events(message)
            elif kind == "desk" and self.on_desk is not None:
                self.on_desk(message)
            elif kind == "request":
                task = asyncio.create_task(self._answer(message), name="routing-bus-request")
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
            elif kind == "reply":
                future = self._replies.get(str(message.get("id")))
                if future is not None and not future.done():
                    future.set_result(message)
        except Exception as exc:  # a bad message never stops the reader
            self._log.error("routing_bus_handler_failed", kind=kind, error=repr(exc))

    async def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"kind": "reply", "id": message.get("id")}
        try:
            if self.on_request is None:
                raise RemoteError(503, f"node {self.node_id} takes no requests")
            result = await self.on_request(str(message.get("method")),
                                           dict(message.get("args") or {}))
            reply.update(ok=True, result=result)
        except Exception as exc:
            status = getattr(exc, "status", 500)
            reply.update(ok=False, status=status, detail=str(getattr(exc, "detail", exc)))
        self.publish(self.channel(str(message.get("from"))), reply)

    async def _failed(self, what: str, exc: BaseException, failures: int) -> None:
        if failures == 1 or failures % 30 == 0:
            self._log.error(what, error=f"{type(exc).__name__}: {exc}", failures=failures,
                            outbox=len(self._outbox))
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._client.connection_pool.disconnect()
        await asyncio.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S)) - 1])


class SharedDeskHub(DeskHub):
    """The desks of several nodes: what one node sends to an agent's desk (an offer, its
    end, a call's connection) and which calls a desk watches go to every node, and each
    hands them to the desks connected to it. Which node sent an offer is remembered, so a
    desk action for it (answer, decline) or for its call (hold, hang up, transfer) is
    forwarded there."""

    def __init__(self, bus: RoutingBus, max_offers: int = 10_000) -> None:
        super().__init__()
        self.bus = bus
        self._offer_nodes: OrderedDict[str, str] = OrderedDict()
        self._call_nodes: OrderedDict[str, str] = OrderedDict()  # who rang the call's offers
        self._max_offers = max_offers
        bus.on_desk = self.on_remote

    def send(self, agent_id: str, message: dict[str, Any]) -> None:
        self.send_local(agent_id, message)
        self.bus.desk("send", agent_id, message=message)

    def watch(self, agent_id: str, call_id: str) -> None:
        super().watch(agent_id, call_id)
        self.bus.desk("watch", agent_id, call=call_id)

    def unwatch(self, agent_id: str, call_id: str) -> None:
        super().unwatch(agent_id, call_id)
        self.bus.desk("unwatch", agent_id, call=call_id)

    def offer_node(self, offer_id: str) -> str | None:
        return self._offer_nodes.get(offer_id)

    def call_node(self, call_id: str) -> str | None:
        """The node that rang the last offer of ``call_id`` here: the node holding it."""
        return self._call_nodes.get(call_id)

    def on_remote(self, message: dict[str, Any]) -> None:
        op, agent_id = message.get("op"), str(message.get("agent"))
        if op == "send" and isinstance(message.get("message"), dict):
            body: dict[str, Any] = message["message"]
            if body.get("type") == "offer":
                node, call_id = str(message.get("from")), str(body.get("call_id"))
                self._offer_nodes[str(body.get("offer_id"))] = node
                self._call_nodes[call_id] = node
                self._call_nodes.move_to_end(call_id)
                for known in (self._offer_nodes, self._call_nodes):
                    while len(known) > self._max_offers:
                        known.popitem(last=False)
            self.send_local(agent_id, body)
        elif op == "watch":
            super().watch(agent_id, str(message.get("call")))
        elif op == "unwatch":
            super().unwatch(agent_id, str(message.get("call")))
