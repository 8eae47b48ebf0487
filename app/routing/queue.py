"""Queue logic, pure: entries and their order, offers and their states, estimated wait,
position announcements, the callback offer.

Order within and across queues: group priority, then caller priority (rule + request,
plus the group's ``callback_priority`` for callbacks), then who joined first. ``joined_at``
is when the caller first entered routing; it survives overflow to another group and a
callback request, so a caller who asks to be called back keeps their place.

Estimated wait = position / staffed agents x mean recent handle time (talk + wrap-up), with
the group's ``default_handle_s`` until it has history. A caller hears their position and
wait only when one of them improved since the last announcement (wait in whole minutes,
rounded up), never a worse figure than before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from app.routing.config import Group
from app.routing.events import OfferState
from app.routing.plan import RoutePlan, RouteRequest

FRONT_PRIORITY = 1_000  # requeued at the front (an agent dropped mid-call)


class OfferError(ValueError):
    """An offer transition that is not allowed (it was decided already)."""


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    call_id: str
    agent_id: str
    group: str | None
    devices: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    state: OfferState = "pending"
    ended_at: datetime | None = None


def end_offer(offer: Offer, state: OfferState, now: datetime) -> Offer:
    """pending -> accepted / rejected / timed_out / cancelled / busy; nothing else."""
    if state == "pending":
        raise OfferError("an offer cannot go back to pending")
    if offer.state != "pending":
        raise OfferError(f"offer {offer.id} of call {offer.call_id} is {offer.state} already, "
                         f"cannot become {state}")
    return replace(offer, state=state, ended_at=now)


@dataclass(frozen=True, slots=True)
class Announced:
    position: int
    wait_min: int | None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A caller (or a callback task) waiting in routing."""

    call_id: str
    request: RouteRequest
    plan: RoutePlan
    step: int  # index of the current plan step
    joined_at: datetime  # first entry into routing: the caller's place
    step_started_at: datetime
    priority: int
    seq: int
    callback: bool = False
    callback_number: str | None = None
    tried: tuple[str, ...] = ()  # agents offered this call in this step
    offers: tuple[str, ...] = ()  # pending offer ids
    callback_offered: bool = False
    announced: Announced | None = None

    @property
    def group(self) -> str | None:
        return self.plan.steps[self.step].group if self.plan.steps else None


def effective_priority(entry: QueueEntry, group: Group | None) -> int:
    bonus = group.callback_priority if (entry.callback and group is not None) else 0
    return entry.priority + bonus


def queue_key(entry: QueueEntry, group: Group | None) -> tuple[int, int, float, int]:
    """Sort key, best first: group priority, caller priority, joined first, arrival seq."""
    group_priority = group.priority if group is not None else 0
    return (-group_priority, -effective_priority(entry, group), entry.joined_at.timestamp(),
            entry.seq)


def estimated_wait_s(position: int, staffed: int, handle_times_s: Sequence[float],
                     default_handle_s: float) -> float | None:
    """None when nobody staffs the group (no estimate can be honest)."""
    if position < 1 or staffed < 1:
        return None
    mean = sum(handle_times_s) / len(handle_times_s) if handle_times_s else default_handle_s
    return position / staffed * mean


def wait_minutes(wait_s: float | None) -> int | None:
    return None if wait_s is None else max(1, math.ceil(wait_s / 60))


def next_announcement(last: Announced | None, position: int, wait_s: float | None
                      ) -> Announced | None:
    """What to announce now (None: stay quiet, nothing improved)."""
    now = Announced(position, wait_minutes(wait_s))
    if last is None:
        return now
    better_position = position < last.position
    better_wait = (now.wait_min is not None and
                   (last.wait_min is None or now.wait_min < last.wait_min))
    worse_wait = (now.wait_min is not None and last.wait_min is not None
                  and now.wait_min > last.wait_min)
    if better_position and not worse_wait:
        return now
    if better_wait and position <= last.position:
        return now
    return None


CALLBACK_EXPIRED = "callback expired"  # the QueueExit reason of a callback task too old


def callback_expired(group: Group | None, joined_at: datetime, now: datetime) -> bool:
    """A callback task whose caller joined more than the group's ``callback_expire_after_s``
    ago is not served any more (nobody wants a call back days later)."""
    limit_s = (group or Group()).callback_expire_after_s
    return (now - joined_at).total_seconds() >= limit_s


def callback_due(entry: QueueEntry, group: Group | None, wait_s: float | None,
                 now: datetime) -> bool:
    """Offer a callback once: when the estimated (or actual) wait passes the threshold."""
    if group is None or group.callback_offer_after_s is None:
        return False
    if entry.callback or entry.callback_offered:
        return False
    waited_s = (now - entry.joined_at).total_seconds()
    limit = group.callback_offer_after_s
    return waited_s >= limit or (wait_s is not None and wait_s >= limit)

