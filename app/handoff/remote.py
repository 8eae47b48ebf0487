"""``Remote``: the cross-node side of a ``LiveRouting`` (several nodes, a ``RoutingBus``).

- Other nodes' routing changes (``events``): each event is handled as a local one (agents'
  states shown on this node's desks; a call's events recorded where the call is held), and a
  pending offer for a call this node holds is rung here, whichever node dispatched it.
- Desk actions forwarded by another node (``request``): answer/prepare/decline an offer this
  node rings, or an action on a call this node holds (``control``).
- Where to forward this node's desk actions (``offer_node``, ``call_node``: learnt by the
  ``SharedDeskHub`` from the offers it was sent; ``held_by`` falls back on the call records'
  node for a desk that never saw the call's offer) and ``forward`` itself (a refusal comes back
  as the ``DeskError`` the other node raised).

It is a part of ``LiveRouting`` and uses its internals (``_handle``, ``_ring``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from app.handoff.links import DeskError
from app.handoff.routing_bus import RemoteError, RoutingBus
from app.routing.config import Target
from app.routing.events import OfferChanged, RoutingEvent
from app.routing.queue import Offer

if TYPE_CHECKING:
    from app.handoff.live import LiveRouting

_EVENT: TypeAdapter[RoutingEvent] = TypeAdapter(RoutingEvent)


Locate = Callable[[str], Awaitable[str | None]]


class Remote:
    def __init__(self, live: LiveRouting, bus: RoutingBus) -> None:
        self.live = live
        self.bus = bus
        # the node holding a call per the call records (wired by ``build_services``): for a
        # desk that did not see the call's offer (reloaded on another node, a supervisor)
        self.locate: Locate | None = None
        bus.on_events = self.events
        bus.on_request = self.request

    def events(self, message: dict[str, Any]) -> None:
        """Another node's routing change: its events, for what this node holds."""
        live = self.live
        for raw in message.get("events") or []:
            try:
                event = _EVENT.validate_python(raw)
            except ValueError as exc:
                live.log.error("routing_event_unreadable", error=str(exc)[:300])
                continue
            live._handle(event)
            if isinstance(event, OfferChanged) and event.state == "pending" \
                    and event.call_id in live.links:
                offer = Offer(id=event.offer_id, call_id=event.call_id,
                              agent_id=event.agent_id, group=event.group,
                              devices=tuple(event.devices), created_at=event.at,
                              expires_at=event.at + timedelta(seconds=event.ring_timeout_s))
                live.spawn(live._ring(offer), f"ring-{offer.id}")

    async def request(self, method: str, args: dict[str, Any]) -> Any:
        """A desk action forwarded by another node, for an offer this node rings or a call
        it holds."""
        live = self.live
        agent_id, offer_id = str(args.get("agent_id")), str(args.get("offer_id"))
        sdp = args.get("sdp")
        if method == "prepare_web" and isinstance(sdp, str):
            return await live.prepare_web(agent_id, offer_id, sdp, forward=False)
        if method == "answer_web":
            return await live.answer_web(agent_id, offer_id, sdp if isinstance(sdp, str)
                                         else None, forward=False)
        if method == "decline":
            await live.decline(agent_id, offer_id, forward=False)
            return None
        if method == "control":
            body = dict(args.get("body") or {})
            if isinstance(body.get("target"), dict):
                body["target"] = Target.model_validate(body["target"])
            return await live.control(agent_id, str(args.get("call_id")),
                                      str(args.get("action")), body, forward=False)
        raise DeskError(400, f"unknown desk action {method!r}")

    def offer_node(self, offer_id: str) -> str | None:
        """The node that rings ``offer_id`` when it is not this one (None: this one)."""
        if offer_id in self.live.ringing:
            return None
        offer_node = getattr(self.live.desk, "offer_node", None)
        return self._other(offer_node(offer_id) if offer_node is not None else None)

    def call_node(self, call_id: str) -> str | None:
        """The node that holds ``call_id`` when it is not this one (None: this one, or not
        known: the call is not with an agent here)."""
        if call_id in self.live.talks:
            return None
        call_node = getattr(self.live.desk, "call_node", None)
        return self._other(call_node(call_id) if call_node is not None else None)

    async def held_by(self, call_id: str) -> str | None:
        """``call_node``, else the node the call records name (None: this node, or the call
        is not up anywhere)."""
        node = self.call_node(call_id)
        if node is None and call_id not in self.live.talks and self.locate is not None:
            node = self._other(await self.locate(call_id))
        return node

    def _other(self, node: str | None) -> str | None:
        return node if node != self.bus.node_id else None

    async def forward(self, node: str, method: str, args: dict[str, Any]) -> Any:
        try:
            return await self.bus.request(node, method, args)
        except RemoteError as exc:
            raise DeskError(exc.status, exc.detail) from exc
