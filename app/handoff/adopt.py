"""Callback tasks served again: a lost node's (the leader's sweep hands them over) and this
node's own after a restart.

A callback task lives in routing (a queue entry, shared when several nodes share Redis) and
in the memory of the node that took the call (its ``CallbackLink``: the packet, the number,
the dial). The record keeps what rebuilds that link: the call's row (``node_id``: the node
that serves the task; the leader's sweep moves a lost node's queued callbacks to itself, in
the transaction that forgets the lost node, with a ``callback_adopted`` line), the
``callback_queued`` event (number, group, the caller's ``joined_at``, the route request),
``handoff_requested`` (the bot's side of the packet), ``crm`` and ``sentiment``. A node
adopts only the callbacks of its own node id, once each (``LiveRouting.adopt_callback``:
linked to the shared entry still there, or queued again keeping the caller's place; past the
group's ``callback_expire_after_s``: ended ``expired``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from app.flows.runtime import Transfer
from app.handoff.packet import HandoffPacket, route_request, trend_of
from app.record import CallbackDone, TranscriptTurn
from app.routing.plan import RouteRequest
from app.routing.region import lookup
from app.storage.handoff_repo import PreviousCall, StoredCallback

if TYPE_CHECKING:
    from app.handoff.service import HandoffService


def packet_of(stored: StoredCallback, request: RouteRequest | None,
              previous: list[PreviousCall]) -> HandoffPacket:
    """The desk's packet of a stored callback (as ``build_packet`` made it at the handoff;
    the slots and the CRM's answer from the stored route request)."""
    handoff = stored.handoff or {}
    channel: Literal["voice", "chat"] = "chat" if stored.channel == "chat" else "voice"
    caller = stored.caller_number or "anonymous"
    return HandoffPacket(
        call_id=stored.call_id, channel=channel, hotline_number=stored.hotline_number,
        caller_number=caller, caller_region=lookup(
            caller if caller != "anonymous" else "").label(),
        locale=stored.locale, queue=str(handoff.get("queue") or stored.queued.get("group")
                                        or ""),
        reason=str(handoff.get("reason") or "callback"), note=str(handoff.get("note") or ""),
        intent=handoff.get("intent"), confidence=handoff.get("confidence"),
        slots=dict(request.slots) if request else {},
        sentiment=handoff.get("sentiment"),
        sentiment_label=request.sentiment if request else None,
        sentiment_trend=trend_of(stored.sentiment_scores),
        sentiment_scores=stored.sentiment_scores,
        transcript=[TranscriptTurn.model_validate(t) for t in handoff.get("transcript", [])],
        flow_path=list(handoff.get("flow_path", [])), previous_calls=previous,
        crm=request.crm if request else dict((stored.crm or {}).get("data", {})),
        handed_over_at=stored.started_at)


def request_of(stored: StoredCallback, packet: HandoffPacket, previous: list[PreviousCall]
               ) -> RouteRequest:
    """The task's route request: as stored with ``callback_queued``, else (a record written
    before it was stored) made again from the packet and the handoff's queue."""
    raw = stored.queued.get("request")
    if isinstance(raw, dict):
        return RouteRequest.model_validate(raw)
    action = Transfer(queue=packet.queue, reason=packet.reason)
    return route_request(packet, action, previous)


def joined_at_of(stored: StoredCallback) -> datetime:
    raw = stored.queued.get("joined_at")
    if isinstance(raw, str):
        at = datetime.fromisoformat(raw)
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return stored.first_joined_at or stored.started_at


async def adopt_callbacks(owner: HandoffService, node_id: str) -> list[str]:
    """Serve the queued callbacks the record gives ``node_id`` that are not served here yet;
    returns the call ids adopted (linked, queued again, or ended expired)."""
    stored = await asyncio.to_thread(owner.repo.queued_callbacks, node_id)
    adopted: list[str] = []
    for task in stored:
        if task.call_id in owner.live.links or task.call_id in owner.adopted:
            continue
        try:
            how = await _adopt(owner, task)
        except (ValueError, ValidationError) as exc:  # a bad record or Redis down: logged
            owner.log.error("callback_not_adopted", call_id=task.call_id,
                            error=f"{type(exc).__name__}: {str(exc)[:300]}")
            continue
        owner.adopted.add(task.call_id)
        owner.log.warning("callback_adopted", call_id=task.call_id, node_id=node_id, how=how)
        adopted.append(task.call_id)
    return adopted


async def _adopt(owner: HandoffService, task: StoredCallback) -> str:
    previous = await asyncio.to_thread(owner.repo.previous_calls, task.caller_number,
                                       task.call_id)
    raw = task.queued.get("request")
    stored_request = RouteRequest.model_validate(raw) if isinstance(raw, dict) else None
    packet = packet_of(task, stored_request, previous)
    request = stored_request or request_of(task, packet, previous)
    number = str(task.queued.get("number") or "")
    if not number or "*" in number:  # masked at rest (``pii_redact_at_rest: phone``)
        owner.late.emitter(task.call_id)(CallbackDone(agent_id="", number=number,
                                                      outcome="no_number"))
        return "no_number"

    def make(request: RouteRequest, number: str, joined_at: datetime) -> Any:
        return owner.callback_link(task.call_id, request, packet, number, joined_at)

    group = task.queued.get("group")
    return await owner.live.adopt_callback(
        task.call_id, make, request, number, joined_at_of(task),
        group if isinstance(group, str) else None)
