"""RoutingService: queues, offers, timers, overflow, priority, callbacks, wait estimates,
driven the way the call path will drive it, on a virtual clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from app.routing.events import (
    OfferChanged,
    Overflowed,
    QueueExit,
    QueueJoined,
    QueueLeft,
    RoutingDecision,
    RoutingEvent,
)
from app.routing.queue import CALLBACK_EXPIRED, OfferError
from app.routing.service import RoutingError, RoutingService
from tests.helpers.routing import MONDAY_10, agent, compiled, config, request

T = MONDAY_10


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


class Desk:
    """A service and everything it published."""

    def __init__(self, groups: dict[str, Any], rules: list[dict[str, Any]] | None = None,
                 agents: dict[str, Any] | None = None, **extra: Any) -> None:
        names = {m if isinstance(m, str) else m["agent"]
                 for g in groups.values() for m in g.get("members", [])}
        cfg = config(agents or {a: agent() for a in sorted(names)}, groups,
                     rules or [{"name": "all", "target": {"group": next(iter(groups))}}],
                     **extra)
        self.events: list[RoutingEvent] = []
        counter = iter(range(1, 1000))
        self.svc = RoutingService(compiled(cfg), publish=self.events.append,
                                  new_id=lambda: f"o{next(counter)}")

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def offers(self, state: str = "pending") -> list[tuple[str, str]]:
        return [(e.call_id, e.agent_id) for e in self.of(OfferChanged) if e.state == state]


def test_a_call_is_queued_offered_answered_and_the_agent_wraps_up() -> None:
    desk = Desk({"g": {"strategy": "sequential", "members": ["ann", "bob"], "wrap_up_s": 10}})
    svc = desk.svc
    svc.login("ann", T)
    svc.login("bob", T)
    ticket = svc.enqueue(request(call_id="c1"), T)
    assert (ticket.status, ticket.group, ticket.position) == ("queued", "g", 1)
    assert ticket.estimated_wait_s == 90.0  # 1 / 2 staffed x 180 s default handle time
    decision = desk.of(RoutingDecision)[0]
    assert (decision.rule, decision.target, decision.call_id) == ("all", "group g", "c1")
    [offer] = svc.dispatch(T)
    assert (offer.agent_id, offer.devices, offer.expires_at) == ("ann", ("web",), at(20))
    assert svc.dispatch(T) == []  # one offer at a time per call
    svc.accept(offer.id, at(4))
    assert desk.of(QueueLeft)[-1].model_dump(include={"reason", "waited_s"}) == {
        "reason": "answered", "waited_s": 4.0}
    assert svc.queues.get("c1") is None
    svc.call_ended("ann", "c1", 120.0, at(124), group="g")
    assert svc.presence.get("ann").state(at(125)) == "wrap_up"  # type: ignore[union-attr]
    assert svc.stats.handle_times("g") == (130.0,)  # talk + wrap-up
    svc.tick(at(134))
    assert svc.presence.get("ann").state(at(134)) == "available"  # type: ignore[union-attr]


def test_ring_timeout_goes_to_the_next_agent_and_delays_the_first() -> None:
    desk = Desk({"g": {"strategy": "sequential", "members": ["ann", "bob"]}},
                offers={"no_answer_delay_s": 30})
    svc = desk.svc
    svc.login("ann", T)
    svc.login("bob", T)
    svc.enqueue(request(call_id="c1"), T)
    svc.dispatch(T)
    assert svc.next_deadline(T) == at(20)
    svc.tick(at(20))
    assert desk.offers("timed_out") == [("c1", "ann")]
    [second] = svc.dispatch(at(20))
    assert second.agent_id == "bob"
    svc.reject(second.id, at(22))
    # both tried, ann delayed until 50 s, bob until 37 s (reject delay 15 s): nobody now
    assert svc.dispatch(at(23)) == []
    assert [o.agent_id for o in svc.dispatch(at(37))] == ["bob"]  # a new round


def test_ring_all_offers_everyone_and_the_first_answer_cancels_the_rest() -> None:
    desk = Desk({"g": {"strategy": "ring_all", "members": ["ann", "bob", "cat"]}})
    svc = desk.svc
    for a in ("ann", "bob", "cat"):
        svc.login(a, T)
    offers = svc.dispatch(T)
    assert offers == []
    svc.enqueue(request(call_id="c1"), T)
    offers = svc.dispatch(T)
    assert sorted(o.agent_id for o in offers) == ["ann", "bob", "cat"]
    svc.accept(offers[1].id, at(2))
    assert sorted(desk.offers("cancelled")) == [("c1", "ann"), ("c1", "cat")]
    ann = svc.presence.get("ann")
    assert ann is not None and ann.state(at(2)) == "available" and ann.not_before is None
    with pytest.raises(RoutingError, match="unknown offer"):
        svc.accept(offers[0].id, at(3))


def test_a_caller_who_hangs_up_while_ringing_frees_the_agent() -> None:
    desk = Desk({"g": {"members": ["ann"]}})
    svc = desk.svc
    svc.login("ann", T)
    svc.enqueue(request(call_id="c1"), T)
    svc.dispatch(T)
    left = svc.abandon("c1", at(7))
    assert left is not None and desk.offers("cancelled") == [("c1", "ann")]
    assert desk.of(QueueLeft)[-1].reason == "abandoned" and desk.of(QueueLeft)[-1].waited_s == 7
    assert svc.presence.get("ann").state(at(7)) == "available"  # type: ignore[union-attr]
    assert svc.abandon("c1", at(8)) is None


def test_max_wait_overflows_along_the_chain_to_voicemail() -> None:
    desk = Desk({"first": {"members": ["ann"], "max_wait_s": 30, "overflow": {"group": "second"}},
                 "second": {"members": ["bob"], "max_wait_s": 40, "overflow": "voicemail"}})
    svc = desk.svc
    svc.login("ann", T)
    svc.login("bob", T)
    svc.set_status("ann", "away", T, reason="meal")
    svc.set_status("bob", "away", T, reason="training")
    svc.enqueue(request(call_id="c1"), T)
    assert svc.next_deadline(T) == at(30)
    svc.tick(at(30))
    assert [(e.from_step, e.to_step, e.reason) for e in desk.of(Overflowed)] == [
        ("group first", "group second", "max_wait")]
    assert desk.of(QueueJoined)[-1].group == "second"
    svc.tick(at(69))
    assert svc.queues.get("c1") is not None
    svc.tick(at(70))
    [exit_] = desk.of(QueueExit)
    assert (exit_.action, exit_.group, exit_.joined_at) == ("voicemail", "second", T)
    assert svc.queues.get("c1") is None


def test_nobody_logged_in_means_no_wait_for_nobody() -> None:
    desk = Desk({"g": {"members": ["ann"], "overflow": "callback"}})
    ticket = desk.svc.enqueue(request(call_id="c1"), T)
    assert (ticket.status, ticket.action) == ("exit", "callback")
    assert [(e.from_step, e.to_step, e.reason) for e in desk.of(Overflowed)] == [
        ("group g", "callback", "empty")]


def test_closed_or_empty_groups_are_skipped_at_once_and_no_route_is_said() -> None:
    office = {"timezone": "Asia/Shanghai", "hours": {"mon": ["09:00-18:00"]}}
    desk = Desk({"office": {"members": ["ann"], "calendar": "office",
                            "overflow": {"group": "night"}},
                 "night": {"members": ["bob"]}}, calendars={"office": office})
    svc = desk.svc
    svc.login("ann", T)
    ticket = svc.enqueue(request(call_id="late"), T.replace(hour=20))
    assert (ticket.status, ticket.action) == ("exit", "no_route")
    assert [(e.to_step, e.reason) for e in desk.of(Overflowed)] == [
        ("group night", "closed")]
    svc.login("bob", T)
    ticket = svc.enqueue(request(call_id="late2"), T.replace(hour=20))
    assert (ticket.status, ticket.group) == ("queued", "night")


def test_a_group_closing_while_a_caller_waits_overflows_them() -> None:
    office = {"timezone": "Asia/Shanghai", "hours": {"mon": ["09:00-18:00"]}}
    desk = Desk({"office": {"members": ["ann"], "calendar": "office", "max_wait_s": 3600,
                            "overflow": "callback"}}, calendars={"office": office})
    svc = desk.svc
    svc.login("ann", T)
    svc.set_status("ann", "away", T, reason="meal")
    svc.enqueue(request(call_id="c1"), T.replace(hour=17, minute=59))
    svc.tick(T.replace(hour=18))
    assert desk.of(QueueExit)[0].action == "callback"
    assert desk.of(Overflowed)[0].reason == "closed"


def test_priority_vip_first_then_who_waited_longest() -> None:
    desk = Desk({"g": {"members": ["ann"], "overflow_if_empty": False}},
                [{"name": "vip", "when": {"crm": {"vip": True}}, "target": {"group": "g"},
                  "priority": 10},
                 {"name": "rest", "target": {"group": "g"}}])
    svc = desk.svc
    svc.enqueue(request(call_id="early"), T)
    svc.enqueue(request(call_id="later"), at(5))
    svc.enqueue(request(call_id="vip", crm={"vip": True}), at(10))
    assert [svc.position(c, at(10))[0] for c in ("vip", "early", "later")] == [1, 2, 3]
    svc.login("ann", at(11))
    served = []
    for n in range(3):
        [offer] = svc.dispatch(at(12 + n))
        served.append(offer.call_id)
        svc.accept(offer.id, at(12 + n))
        svc.call_ended("ann", offer.call_id, 1.0, at(12 + n))
    assert served == ["vip", "early", "later"]


def test_a_shared_agent_serves_the_higher_priority_group_first() -> None:
    desk = Desk({"normal": {"members": ["ann"], "overflow_if_empty": False},
                 "senior": {"members": ["ann"], "priority": 5, "overflow_if_empty": False}},
                [{"name": "s", "when": {"queue": "senior"}, "target": {"group": "senior"}},
                 {"name": "n", "target": {"group": "normal"}}])
    svc = desk.svc
    svc.enqueue(request(call_id="normal-early"), T)
    svc.enqueue(request(call_id="senior-late", queue="senior"), at(30))
    svc.login("ann", at(31))
    assert [o.call_id for o in svc.dispatch(at(31))] == ["senior-late"]


def test_a_callback_keeps_the_callers_place_and_does_not_overflow() -> None:
    desk = Desk({"g": {"members": ["ann"], "max_wait_s": 60, "overflow": "voicemail",
                       "overflow_if_empty": False}})
    svc = desk.svc
    svc.enqueue(request(call_id="first"), T)
    svc.enqueue(request(call_id="second"), at(10))
    entry = svc.request_callback("first", "+8613800138000", at(20))
    assert entry.callback and entry.joined_at == T and entry.callback_number == "+8613800138000"
    assert svc.position("first", at(20))[0] == 1
    svc.tick(at(70))  # second overflows to voicemail; the callback task stays
    assert [e.call_id for e in desk.of(QueueExit)] == ["second"]
    svc.login("ann", at(80))
    [offer] = svc.dispatch(at(80))
    assert offer.call_id == "first"
    assert desk.of(QueueJoined)[-1].callback


def test_a_callback_task_after_an_exit_is_queued_with_the_original_join_time() -> None:
    desk = Desk({"g": {"members": ["ann"], "overflow_if_empty": False}})
    svc = desk.svc
    svc.enqueue(request(call_id="newer"), at(100))
    svc.enqueue_callback(request(call_id="old"), "+8613800138000", joined_at=T, now=at(200))
    assert svc.position("old", at(200))[0] == 1 and svc.queues.get("old").callback  # type: ignore[union-attr]


def test_a_callback_task_waits_even_when_nobody_is_logged_in() -> None:
    desk = Desk({"g": {"members": ["ann"], "overflow": "callback"}})
    svc = desk.svc
    ticket = svc.enqueue(request(call_id="c1"), T)
    assert (ticket.status, ticket.action) == ("exit", "callback")
    ticket = svc.enqueue_callback(request(call_id="c1"), "+8613800138000", T, at(30))
    assert (ticket.status, ticket.group) == ("queued", "g")
    svc.tick(at(3600))  # no max wait for a callback task
    svc.login("ann", at(3601))
    [offer] = svc.dispatch(at(3601))
    assert offer.call_id == "c1" and svc.queues.get("c1").callback_number == "+8613800138000"  # type: ignore[union-attr]


def test_a_callback_task_expires_after_the_groups_callback_expiry_with_its_offer() -> None:
    desk = Desk({"g": {"members": ["ann"], "overflow_if_empty": False,
                       "callback_expire_after_s": 7200}})
    svc = desk.svc
    svc.enqueue_callback(request(call_id="c1"), "+8613800138000", T, at(60))
    assert svc.next_deadline(at(60)) == at(7200)  # the timer wakes for the expiry
    svc.tick(at(7199))
    assert svc.queues.get("c1") is not None
    svc.login("ann", at(7199))
    [offer] = svc.dispatch(at(7199))  # ringing when it expires: the offer is cancelled
    svc.tick(at(7200))
    assert svc.queues.get("c1") is None and svc.presence.get("ann").offers == ()  # type: ignore[union-attr]
    assert [(e.offer_id, e.state) for e in desk.of(OfferChanged) if e.state != "pending"] == [
        (offer.id, "cancelled")]
    [exit_] = desk.of(QueueExit)
    assert (exit_.call_id, exit_.action, exit_.reason) == ("c1", "no_route", CALLBACK_EXPIRED)
    assert svc.dispatch(at(7201)) == []


def test_an_agent_target_who_stays_busy_is_given_up_after_the_ring_timeout() -> None:
    desk = Desk({"g": {"members": ["ann"]}},
                [{"name": "boss", "target": {"agent": "boss"}, "overflow": {"group": "g"}}],
                agents={"ann": agent(), "boss": agent()}, offers={"agent_ring_timeout_s": 15})
    svc = desk.svc
    svc.login("boss", T)
    svc.login("ann", T)
    svc.enqueue(request(call_id="first"), T)
    svc.accept(svc.dispatch(T)[0].id, at(1))  # boss is on a call now
    svc.enqueue(request(call_id="second"), at(2))
    assert svc.dispatch(at(2)) == [] and svc.next_deadline(at(2)) == at(17)
    svc.tick(at(17))
    assert desk.of(Overflowed)[-1].model_dump(include={"call_id", "to_step", "reason"}) == {
        "call_id": "second", "to_step": "group g", "reason": "unavailable"}
    assert [o.agent_id for o in svc.dispatch(at(17))] == ["ann"]


def test_estimated_wait_and_announcements_only_when_they_improve() -> None:
    desk = Desk({"g": {"members": ["ann", "bob"], "default_handle_s": 120}})
    svc = desk.svc
    svc.login("ann", T)
    svc.login("bob", T)
    for a in ("ann", "bob"):
        svc.set_status(a, "away", T, reason="break")
    for i in range(5):
        svc.enqueue(request(call_id=f"c{i}"), at(i))
    # away agents do not staff the group: no honest estimate
    assert svc.position("c4", at(5)) == (5, None)
    svc.set_status("ann", "available", at(5))
    svc.set_status("bob", "available", at(5))
    assert svc.position("c4", at(5)) == (5, 300.0)  # 5 / 2 x 120 s
    said = svc.announcement("c4", at(5))
    assert said is not None and (said.position, said.wait_min) == (5, 5)
    assert svc.announcement("c4", at(6)) is None  # nothing improved
    offers = svc.dispatch(at(6))
    for o in offers:
        svc.accept(o.id, at(7))
    said = svc.announcement("c4", at(8))
    assert said is not None and (said.position, said.wait_min) == (3, 3)
    for o in offers:
        svc.call_ended(o.agent_id, o.call_id, 600.0, at(600), group="g")
    # handle times are long now (610 s): the estimate got worse, so it is not announced
    assert svc.position("c4", at(601))[1] == pytest.approx(3 / 2 * 610)
    assert svc.announcement("c4", at(601)) is None


def test_a_callback_is_offered_once_when_the_wait_passes_the_threshold() -> None:
    desk = Desk({"g": {"members": ["ann"], "callback_offer_after_s": 300}})
    svc = desk.svc
    svc.login("ann", T)
    svc.set_status("ann", "away", T, reason="meal")
    svc.enqueue(request(call_id="c1"), T)
    svc.set_status("ann", "available", T)
    svc.set_status("ann", "away", T, reason="meal")
    assert not svc.callback_due("c1", at(10))  # no estimate, waited 10 s
    assert svc.callback_due("c1", at(300))     # waited 300 s
    assert not svc.callback_due("c1", at(301))  # once


def test_requeue_at_the_front_after_an_agent_dropped() -> None:
    desk = Desk({"g": {"members": ["ann"], "overflow_if_empty": False}})
    svc = desk.svc
    svc.enqueue(request(call_id="waiting"), T)
    svc.enqueue(request(call_id="dropped"), at(50), joined_at=at(-100), front=True)
    assert svc.position("dropped", at(50))[0] == 1


def test_an_agent_target_that_does_not_answer_goes_to_the_rules_overflow_number() -> None:
    desk = Desk({"g": {"members": ["ann"]}},
                [{"name": "boss", "target": {"agent": "boss"},
                  "overflow": {"number": "+8613800138000"}}],
                agents={"ann": agent(), "boss": agent()})
    svc = desk.svc
    svc.login("boss", T)
    ticket = svc.enqueue(request(call_id="c1"), T)
    assert (ticket.status, ticket.group) == ("queued", None)
    assert desk.of(QueueJoined)[0].group == "agent:boss"
    [offer] = svc.dispatch(T)
    assert offer.agent_id == "boss" and offer.expires_at == at(20)
    svc.tick(at(20))
    [exit_] = desk.of(QueueExit)
    assert (exit_.action, exit_.number) == ("dial_number", "+8613800138000")


def test_going_away_withdraws_a_ringing_offer_and_the_call_goes_on() -> None:
    desk = Desk({"g": {"strategy": "sequential", "members": ["ann", "bob"]}})
    svc = desk.svc
    svc.login("ann", T)
    svc.login("bob", T)
    svc.enqueue(request(call_id="c1"), T)
    svc.dispatch(T)
    svc.set_status("ann", "away", at(3), reason="break")
    assert desk.offers("cancelled") == [("c1", "ann")]
    assert [o.agent_id for o in svc.dispatch(at(3))] == ["bob"]


def test_missed_offers_in_a_row_set_the_agent_away() -> None:
    desk = Desk({"g": {"members": ["ann"]}},
                offers={"max_missed_offers": 2, "no_answer_delay_s": 0})
    svc = desk.svc
    svc.login("ann", T)
    for n in range(2):
        svc.enqueue(request(call_id=f"c{n}"), at(100 * n))
        svc.dispatch(at(100 * n))
        svc.tick(at(100 * n + 20))
        svc.abandon(f"c{n}", at(100 * n + 21))
    ann = svc.presence.get("ann")
    assert ann is not None and (ann.chosen, ann.away_reason) == ("away", "missed_offers")


def test_bad_requests_are_refused_with_a_reason() -> None:
    desk = Desk({"g": {"members": ["ann"], "overflow_if_empty": False}})
    svc = desk.svc
    with pytest.raises(RoutingError, match="unknown agent 'zed'"):
        svc.login("zed", T)
    svc.enqueue(request(call_id="c1"), T)
    with pytest.raises(RoutingError, match="queued already"):
        svc.enqueue(request(call_id="c1"), T)
    with pytest.raises(RoutingError, match="not queued"):
        svc.request_callback("nope", "+8613800138000", T)
    svc.login("ann", T)
    [offer] = svc.dispatch(T)
    svc.accept(offer.id, at(1))
    with pytest.raises(RoutingError):
        svc.no_answer(offer.id, at(2))


def test_offer_states_only_move_from_pending() -> None:
    from app.routing.queue import Offer, end_offer

    offer = Offer("o", "c", "a", "g", ("web",), T, at(20))
    done = end_offer(offer, "accepted", at(1))
    assert (done.state, done.ended_at) == ("accepted", at(1))
    with pytest.raises(OfferError, match="accepted already, cannot become timed_out"):
        end_offer(done, "timed_out", at(2))
    with pytest.raises(OfferError, match="back to pending"):
        end_offer(offer, "pending", at(2))
