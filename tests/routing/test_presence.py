"""Agent presence: chosen status apart from system state, offers, wrap-up timer, missed
offers, and the typed events every change produces."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.routing import presence as pres
from app.routing.events import AgentStateChanged
from app.routing.presence import AgentPresence, PresenceError, effective_state
from tests.helpers.routing import MONDAY_10

T = MONDAY_10


def test_login_ring_answer_wrap_up_and_the_timer() -> None:
    p, events = pres.set_status(AgentPresence("a"), "available", T)
    assert [(e.previous, e.state, e.cause) for e in events] == [("offline", "available", "agent")]
    assert isinstance(events[0], AgentStateChanged) and events[0].type == "agent_state"
    assert p.idle_since == T
    p, events = pres.offer_made(p, "o1", 1, T)
    assert effective_state(p, T) == "ringing" and p.system == "ringing"
    p, events = pres.offer_accepted(p, "o1", "call-1", T + timedelta(seconds=4))
    assert (p.calls, p.offers, effective_state(p, T)) == (("call-1",), (), "on_call")
    end = T + timedelta(seconds=100)
    p, events = pres.call_ended(p, "call-1", 96.0, 20.0, end, today=end.date())
    assert events[0].state == "wrap_up" and p.wrap_up_until == end + timedelta(seconds=20)
    assert (p.calls_today, p.talk_s_today) == (1, 96.0)
    assert pres.tick(p, end + timedelta(seconds=19)) == (p, [])
    p, events = pres.tick(p, end + timedelta(seconds=25))
    assert [(e.previous, e.state, e.cause) for e in events] == [
        ("wrap_up", "available", "wrap_up_timer")]
    assert p.idle_since == end + timedelta(seconds=20)  # free since the timer ran out


def test_going_away_during_a_call_takes_effect_after_it() -> None:
    p = AgentPresence("a", chosen="available", system="on_call", calls=("c",))
    p, events = pres.set_status(p, "away", T, reason="break")
    assert (p.chosen, p.away_reason, effective_state(p, T)) == ("away", "break", "on_call")
    assert events[0].chosen == "away" and events[0].state == "on_call"
    p, _ = pres.call_ended(p, "c", 30.0, 0.0, T)
    assert effective_state(p, T) == "away"
    with pytest.raises(PresenceError, match="away"):
        pres.offer_made(p, "o1", 1, T)


def test_no_answer_reject_and_busy_have_their_own_delay() -> None:
    p = AgentPresence("a", chosen="available")
    for outcome, delay in (("no_answer", 30.0), ("rejected", 15.0), ("busy", 60.0)):
        rung, _ = pres.offer_made(p, "o", 1, T)
        after, events = pres.offer_missed(rung, "o", outcome, delay, 3, T)  # type: ignore[arg-type]
        assert after.not_before == T + timedelta(seconds=delay)
        assert events[0].cause == outcome and after.system == "idle"
        with pytest.raises(PresenceError, match="no offer before"):
            pres.offer_made(after, "o2", 1, T + timedelta(seconds=delay - 1))
        pres.offer_made(after, "o2", 1, T + timedelta(seconds=delay))


def test_after_n_unanswered_offers_the_agent_is_set_away() -> None:
    p = AgentPresence("a", chosen="available")
    now = T
    for n in range(1, 4):
        p, _ = pres.offer_made(p, f"o{n}", 1, now)
        p, events = pres.offer_missed(p, f"o{n}", "no_answer", 0.0, 3, now)
        now += timedelta(seconds=30)
    assert (p.chosen, p.away_reason, p.missed_in_row) == ("away", "missed_offers", 3)
    assert events[0].cause == "missed 3 offers in a row" and events[0].state == "away"
    p, _ = pres.set_status(p, "available", now)
    assert (p.missed_in_row, effective_state(p, now)) == (0, "available")


def test_rejects_and_answers_reset_or_do_not_count_as_missed() -> None:
    p = AgentPresence("a", chosen="available")
    p, _ = pres.offer_made(p, "o1", 1, T)
    p, _ = pres.offer_missed(p, "o1", "no_answer", 0.0, 2, T)
    p, _ = pres.offer_made(p, "o2", 1, T)
    p, _ = pres.offer_missed(p, "o2", "rejected", 0.0, 2, T)
    assert (p.missed_in_row, p.chosen) == (1, "available")
    p, _ = pres.offer_made(p, "o3", 1, T)
    p, _ = pres.offer_accepted(p, "o3", "c", T)
    assert p.missed_in_row == 0


def test_capacity_and_invalid_transitions() -> None:
    p = AgentPresence("a", chosen="available")
    p, _ = pres.offer_made(p, "o1", 2, T)
    p, _ = pres.offer_made(p, "o2", 2, T)  # a two-call agent may ring twice
    with pytest.raises(PresenceError, match="capacity"):
        pres.offer_made(p, "o3", 2, T)
    with pytest.raises(PresenceError, match="no pending offer 'zz'"):
        pres.offer_accepted(p, "zz", "c", T)
    with pytest.raises(PresenceError, match="not on call"):
        pres.call_ended(p, "c", 1.0, 0.0, T)
    with pytest.raises(PresenceError, match="not in wrap-up"):
        pres.end_wrap_up(p, T)
    with pytest.raises(PresenceError, match="away needs a reason"):
        pres.set_status(p, "away", T)
    with pytest.raises(PresenceError, match="offline"):
        pres.offer_made(AgentPresence("b"), "o", 1, T)


def test_cancelled_offers_cost_nothing_and_wrap_up_can_end_early() -> None:
    p = AgentPresence("a", chosen="available")
    p, _ = pres.offer_made(p, "o1", 1, T)
    p, events = pres.offer_cancelled(p, "o1", T)
    assert (p.not_before, p.missed_in_row, effective_state(p, T)) == (None, 0, "available")
    assert events[0].cause == "offer_cancelled"
    p = AgentPresence("a", chosen="available", system="wrap_up",
                      wrap_up_until=T + timedelta(seconds=60))
    p, events = pres.end_wrap_up(p, T)
    assert effective_state(p, T) == "available" and p.idle_since == T


def test_counters_start_again_on_a_new_day() -> None:
    p = AgentPresence("a", chosen="available", system="on_call", calls=("c",), calls_today=7,
                      talk_s_today=900.0, day=(T - timedelta(days=1)).date())
    p, _ = pres.call_ended(p, "c", 60.0, 0.0, T, today=T.date())
    assert (p.calls_today, p.talk_s_today, p.day) == (1, 60.0, T.date())


def test_a_logout_while_on_a_call_keeps_the_call() -> None:
    p = AgentPresence("a", chosen="available", system="on_call", calls=("c",))
    p, events = pres.set_status(p, "offline", T)
    assert effective_state(p, T) == "on_call" and events[0].chosen == "offline"
    p, events = pres.call_ended(p, "c", 10.0, 0.0, T)
    assert events[0].state == "offline"
