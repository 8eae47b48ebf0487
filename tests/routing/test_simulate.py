"""The simulator drives the real service: a burst is served in order, impatient callers
leave, unanswered rings go to the next agent."""

from __future__ import annotations

from datetime import timedelta

from app.routing.simulate import AgentSetup, Arrival, simulate
from tests.helpers.routing import MONDAY_10, agent, compiled, config, request

CFG = config({a: agent() for a in ("ann", "bob")},
             {"g": {"members": ["ann", "bob"], "max_wait_s": 3600, "wrap_up_s": 0,
                    "overflow": "voicemail"}},
             [{"name": "all", "target": {"group": "g"}}])


def burst(n: int, patience_s: float | None = None) -> list[Arrival]:
    return [Arrival(request(call_id=f"c{i:02d}"), MONDAY_10 + timedelta(seconds=i), patience_s)
            for i in range(n)]


def test_a_burst_is_answered_first_come_first_served() -> None:
    results = simulate(compiled(CFG), burst(10), AgentSetup(("ann", "bob")), handle_s=100.0,
                       answer_after_s=2.0)
    assert all(r.outcome == "answered" for r in results)
    answered_at = [r.at + timedelta(seconds=r.wait_s or 0) for r in results]
    assert answered_at == sorted(answered_at)  # nobody overtaken
    # c00 is answered at 2 s and talks until 102 s; c02 (arrived at 2 s) is answered at 104 s
    assert results[0].wait_s == 2.0 and results[2].wait_s == 102.0
    assert {r.agent for r in results} == {"ann", "bob"}
    again = simulate(compiled(CFG), burst(10), AgentSetup(("ann", "bob")), handle_s=100.0,
                     answer_after_s=2.0)
    assert [(r.agent, r.wait_s) for r in again] == [(r.agent, r.wait_s) for r in results]


def test_impatient_callers_hang_up_and_nobody_logged_in_means_voicemail() -> None:
    results = simulate(compiled(CFG), burst(6, patience_s=50.0), AgentSetup(("ann",)),
                       handle_s=100.0, answer_after_s=2.0)
    assert [r.outcome for r in results] == ["answered"] + ["abandoned"] * 5
    assert results[1].wait_s == 50.0
    nobody = simulate(compiled(CFG), burst(2), AgentSetup(()), handle_s=100.0)
    assert [r.outcome for r in nobody] == ["voicemail", "voicemail"]


def test_unanswered_rings_move_on_and_the_call_is_still_answered() -> None:
    results = simulate(compiled(CFG), burst(4), AgentSetup(("ann", "bob")), handle_s=30.0,
                       no_answer_rate=0.5, seed=3)
    assert all(r.outcome == "answered" for r in results)
    assert max(r.wait_s or 0 for r in results) >= 20.0  # at least one ring timed out
