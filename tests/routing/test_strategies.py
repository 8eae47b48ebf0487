"""Every distribution strategy, through the routing decision and as a pure function."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from app.routing.engine import route
from app.routing.plan import RoutePlan
from app.routing.presence import AgentPresence
from app.routing.strategies import Context, Member, order, stable_seed
from tests.helpers.routing import MONDAY_10, agent, compiled, config, request, roster

AGENTS = ("ann", "bob", "cat", "dan")


def plan_for(strategy: str, presences: dict[str, AgentPresence], call_id: str = "c1",
             members: list[Any] | None = None, last_offered: str | None = None,
             **req: Any) -> RoutePlan:
    cfg = config(
        {"ann": agent(general=1, orders=2), "bob": agent(general=3, orders=1),
         "cat": agent(general=2, orders=5), "dan": agent(general=5)},
        {"g": {"strategy": strategy, "members": members or list(AGENTS), "skills": ["general"]}},
        [{"name": "all", "target": {"group": "g"}}],
    )
    state = roster(presences, last_offered={"g": last_offered} if last_offered else None)
    return route(request(call_id=call_id, **req), state, compiled(cfg), MONDAY_10)


def idle(**seconds: float) -> dict[str, AgentPresence]:
    """Available agents, idle for the given seconds."""
    return {a: AgentPresence(a, chosen="available",
                             idle_since=MONDAY_10 - timedelta(seconds=s))
            for a, s in seconds.items()}


def ids(plan: RoutePlan) -> list[str]:
    return plan.candidate_ids(0)


EVERYONE = idle(ann=10, bob=20, cat=30, dan=40)


def test_sequential_is_member_order_every_time() -> None:
    assert ids(plan_for("sequential", EVERYONE)) == ["ann", "bob", "cat", "dan"]
    explicit = [{"agent": "dan", "order": 0}, {"agent": "ann", "order": 5}, "bob", "cat"]
    # members without an order take their place in the list (bob 2, cat 3)
    assert ids(plan_for("sequential", EVERYONE, members=explicit)) == ["dan", "bob", "cat", "ann"]


def test_ring_all_offers_everyone_at_once() -> None:
    plan = plan_for("ring_all", EVERYONE)
    assert plan.steps[0].simultaneous and ids(plan) == ["ann", "bob", "cat", "dan"]


def test_longest_idle_first() -> None:
    assert ids(plan_for("longest_idle", EVERYONE)) == ["dan", "cat", "bob", "ann"]
    assert plan_for("longest_idle", EVERYONE).steps[0].candidates[0].why == "idle 40 s"


def test_fewest_calls_today_then_longest_idle() -> None:
    presences = {a: AgentPresence(a, chosen="available", calls_today=n,
                                  idle_since=MONDAY_10 - timedelta(seconds=s))
                 for a, n, s in (("ann", 5, 1), ("bob", 2, 1), ("cat", 2, 50), ("dan", 9, 99))}
    assert ids(plan_for("fewest_calls", presences)) == ["cat", "bob", "ann", "dan"]


def test_least_talk_time_today() -> None:
    presences = {a: AgentPresence(a, chosen="available", talk_s_today=t)
                 for a, t in (("ann", 900.0), ("bob", 60.0), ("cat", 300.0), ("dan", 0.0))}
    assert ids(plan_for("least_talk_time", presences)) == ["dan", "bob", "cat", "ann"]


def test_skills_based_best_level_for_the_calls_skills_then_longest_idle() -> None:
    # group skill general only: dan 5, bob 3, cat 2, ann 1
    assert ids(plan_for("skills_based", EVERYONE)) == ["dan", "bob", "cat", "ann"]
    # the flow asks for orders too: cat 2+5, dan 5+0, bob 3+1, ann 1+2
    plan = plan_for("skills_based", EVERYONE, skills=("orders",))
    assert ids(plan) == ["cat", "dan", "bob", "ann"]
    assert plan.steps[0].candidates[0].why == "level 7, idle 30 s"
    # equal levels: the longest idle first
    members = [Member("ann", 0, level=4, idle_since=MONDAY_10 - timedelta(seconds=5)),
               Member("bob", 1, level=4, idle_since=MONDAY_10 - timedelta(seconds=50)),
               Member("cat", 2, level=2, idle_since=MONDAY_10 - timedelta(seconds=500))]
    ranked = order("skills_based", members, Context(now=MONDAY_10))
    assert [a for a, _ in ranked] == ["bob", "ann", "cat"]


def test_round_robin_starts_after_the_agent_offered_last() -> None:
    assert ids(plan_for("round_robin", EVERYONE)) == ["ann", "bob", "cat", "dan"]
    assert ids(plan_for("round_robin", EVERYONE, last_offered="bob")) == ["cat", "dan", "ann",
                                                                           "bob"]
    # the next in turn is away: the one after them
    some = {k: v for k, v in EVERYONE.items() if k != "cat"}
    assert ids(plan_for("round_robin", some, last_offered="bob"))[0] == "dan"


def test_random_is_a_shuffle_that_replays_for_the_same_call() -> None:
    first = ids(plan_for("random", EVERYONE, call_id="call-7"))
    assert sorted(first) == sorted(AGENTS)
    assert ids(plan_for("random", EVERYONE, call_id="call-7")) == first
    orders = {tuple(ids(plan_for("random", EVERYONE, call_id=f"c{i}"))) for i in range(60)}
    assert len(orders) > 10  # different calls, different orders
    tops = Counter(ids(plan_for("random", EVERYONE, call_id=f"c{i}"))[0] for i in range(400))
    assert min(tops.values()) > 60  # each agent first about a quarter of the time


def test_weighted_random_favours_heavier_members() -> None:
    members = [{"agent": "ann", "weight": 6}, {"agent": "bob", "weight": 2},
               {"agent": "cat", "weight": 1}, {"agent": "dan", "weight": 1}]
    tops = Counter(ids(plan_for("weighted_random", EVERYONE, call_id=f"c{i}",
                                members=members))[0] for i in range(1000))
    assert 520 <= tops["ann"] <= 680  # expected 600
    assert 140 <= tops["bob"] <= 260  # expected 200
    assert tops["cat"] + tops["dan"] < tops["bob"] + 80


def test_strategies_as_pure_functions_with_their_seed() -> None:
    members = [Member(a, i, weight=i + 1) for i, a in enumerate(AGENTS)]
    ctx = Context(now=MONDAY_10, seed=stable_seed("x", "g"), group_size=4)
    assert order("random", members, ctx) == order("random", list(reversed(members)), ctx)
    assert order("weighted_random", members, ctx) == order("weighted_random", members, ctx)
    assert stable_seed("c1", "g") == 3_674_284_756  # crc32: same in every process
    assert order("sequential", [], ctx) == []
