"""Routing: decision latency with 1,000 agents and 50 groups, and queue fairness in a burst.

    .venv/bin/python -m bench.routing_decision [--decisions 5000] [--burst 200] [--seed 1]

1. Decision: ``route()`` on a generated roster (1,000 agents, each in two of 50 groups,
   every strategy, a calendar per group, a hotline with 30 rules, presence mixed: available,
   on a call, wrap-up, away, offline), every call from a number never seen before (the
   region lookup is not cached). Baseline in the same run: a naive full scan (rules checked
   uncompiled, calendars uncached, all 1,000 agents scanned for the target group's members,
   longest idle; it computes only the first group's candidates, no explanation, no overflow
   chain). Also one ``dispatch`` with 200 calls waiting. Wall and
   thread CPU time are both printed: on a shared machine the wall time includes waiting for
   a core.
2. Fairness: a burst of 200 calls within 20 s, then within 5 minutes, onto a group of 20
   agents (exponential handle times, mean 120 s, the same for both runs). The service (best
   call first: priority, then who joined first) against a naive baseline where a free agent
   takes any waiting call (random order). Wait spread: p95 - p5, standard deviation, max,
   and how many callers were overtaken by someone who called later. (In an instant burst
   the set of waits is fixed by capacity, whatever the order; order shows in who waits
   them, and in the spread once arrivals are spread out.)
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.routing.conditions import compile_when, facts, first_failure
from app.routing.config import STRATEGIES, RoutingConfig, digits
from app.routing.engine import CompiledRouting, RosterState, route
from app.routing.plan import RouteRequest
from app.routing.presence import AgentPresence
from app.routing.region import PROVINCES, lookup
from app.routing.service import RoutingService
from app.routing.simulate import AgentSetup, Arrival, simulate

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SKILLS = ("orders", "returns", "repairs", "sales", "complaints", "stores")
INTENTS = ("order_status", "refund_request", "repair_service", "complaint", "product_inquiry",
           None)
HOURS = {d: ["08:00-22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
MOBILE_PREFIXES = ("138", "139", "137", "135", "136", "150", "186", "189")


def big_config(rng: random.Random, n_agents: int = 1000, n_groups: int = 50) -> RoutingConfig:
    agents: dict[str, Any] = {}
    for i in range(n_agents):
        roll = rng.random()
        langs = ["zh"] if roll < 0.8 else ["en"] if roll < 0.9 else ["zh", "en"]
        skills = {"general": rng.randint(1, 10)}
        skills.update({s: rng.randint(1, 10) for s in rng.sample(SKILLS, rng.randint(1, 3))})
        agents[f"a{i:04d}"] = {"name": f"Agent {i}", "languages": langs, "skills": skills}
    members: dict[int, list[str]] = {g: [] for g in range(n_groups)}
    for aid in agents:
        for g in rng.sample(range(n_groups), 2):
            members[g].append(aid)
    groups = {
        f"g{g:02d}": {
            "strategy": STRATEGIES[g % len(STRATEGIES)], "members": members[g],
            "skills": ["general"], "calendar": "service", "max_wait_s": 120,
            "overflow": {"group": f"g{(g + 1) % n_groups:02d}"} if g % 5 else {"callback": True},
        }
        for g in range(n_groups)
    }
    rules: list[dict[str, Any]] = [
        {"name": "angry", "when": {"sentiment": "negative"}, "target": {"group": "g00"}},
        {"name": "vip", "when": {"crm": {"vip": True}}, "target": {"group": "g01"},
         "priority": 10},
        {"name": "english", "when": {"locale": "en"}, "target": {"group": "g02"}},
        {"name": "holiday", "when": {"day": "holiday"}, "target": "callback"},
        {"name": "complaints", "when": {"intent": "complaint"}, "target": {"group": "g03"}},
    ]
    for i, (province, _) in enumerate(PROVINCES[:25]):
        rules.append({"name": f"p{i}", "when": {"province": province, "hours": ["08:00-20:00"]},
                      "target": {"group": f"g{5 + i:02d}"}})
    return RoutingConfig.model_validate({
        "calendars": {"service": {"timezone": "Asia/Shanghai", "hours": HOURS}},
        "agents": agents, "groups": groups,
        "hotlines": [{"number": "4008001234", "calendar": "service", "rules": rules,
                      "default": {"split": [{"group": "g40", "percent": 50},
                                            {"group": "g41", "percent": 50}]}}],
    })


def presence(config: RoutingConfig, rng: random.Random) -> dict[str, AgentPresence]:
    out: dict[str, AgentPresence] = {}
    for aid in config.agents:
        roll = rng.random()
        idle = NOW - timedelta(seconds=rng.uniform(0, 3600))
        if roll < 0.6:
            p = AgentPresence(aid, chosen="available", idle_since=idle,
                              calls_today=rng.randint(0, 40), talk_s_today=rng.uniform(0, 9000))
        elif roll < 0.8:
            p = AgentPresence(aid, chosen="available", system="on_call", calls=("x",))
        elif roll < 0.9:
            p = AgentPresence(aid, chosen="available", system="wrap_up",
                              wrap_up_until=NOW + timedelta(seconds=30))
        elif roll < 0.95:
            p = AgentPresence(aid, chosen="away", away_reason="break")
        else:
            p = AgentPresence(aid)
        out[aid] = p
    return out


def requests(rng: random.Random, n: int) -> list[RouteRequest]:
    out = []
    for i in range(n):
        number = f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
        out.append(RouteRequest(
            call_id=f"call-{i}", hotline_number="4008001234", caller_number=number,
            locale="en" if rng.random() < 0.08 else "zh", intent=rng.choice(INTENTS),
            sentiment="negative" if rng.random() < 0.05 else None,
            crm={"vip": rng.random() < 0.03}, skills=(rng.choice(SKILLS),),
        ))
    return out


def naive_route(req: RouteRequest, config: RoutingConfig, pres: dict[str, AgentPresence],
                now: datetime) -> list[str]:
    hotline = next(h for h in config.hotlines if h.digits == digits(req.hotline_number))
    calendar = config.calendars[hotline.calendar or ""]
    region = lookup.__wrapped__(req.caller_number)  # type: ignore[attr-defined]
    f = facts(req, region, now, calendar)  # type: ignore[arg-type]
    target = hotline.default
    for rule in hotline.rules:
        if first_failure(compile_when(rule.when), f) is None:
            target = rule.target
            break
    if target is None or not (target.group or target.split):
        return []
    gid = target.group or (target.split[0].group if target.split else "")
    group = config.groups[gid]
    if group.calendar and config.calendars[group.calendar].status(now) != "open":
        return []
    found: list[tuple[datetime, str]] = []
    for aid, agent in config.agents.items():  # the full scan
        if aid not in [m.agent for m in group.members]:
            continue
        p = pres.get(aid)
        if p is None or p.chosen != "available" or p.calls or p.offers:
            continue
        if p.system == "wrap_up" and p.wrap_up_until and now < p.wrap_up_until:
            continue
        if any(s not in agent.skills for s in group.skills) or req.locale not in agent.languages:
            continue
        found.append((p.idle_since or now, aid))
    return [aid for _, aid in sorted(found)]


def percentiles(samples_s: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples_s, n=1000)
    return {"p50": q[499] * 1e3, "p95": q[949] * 1e3, "p99": q[989] * 1e3,
            "max": max(samples_s) * 1e3}


def bench_decisions(n: int, seed: int) -> None:
    rng = random.Random(seed)
    config = big_config(rng)
    pres = presence(config, rng)
    routing = CompiledRouting(config)
    roster = RosterState(pres)
    reqs = requests(rng, n + 200)
    for r in reqs[:200]:  # warm-up: imports, calendar minute cache
        route(r, roster, routing, NOW)
        naive_route(r, config, pres, NOW)
    walls: dict[str, list[float]] = {"ours": [], "naive": []}
    cpus: dict[str, list[float]] = {"ours": [], "naive": []}
    lookup.cache_clear()
    steps = 0
    for r in reqs[200:]:
        c, t = time.thread_time(), time.perf_counter()
        plan = route(r, roster, routing, NOW)
        walls["ours"].append(time.perf_counter() - t)
        cpus["ours"].append(time.thread_time() - c)
        c, t = time.thread_time(), time.perf_counter()
        naive_route(r, config, pres, NOW)
        walls["naive"].append(time.perf_counter() - t)
        cpus["naive"].append(time.thread_time() - c)
        assert plan.steps, plan.reason
        steps += len(plan.steps)
    print(f"decision, 1,000 agents / 50 groups / 30 rules, {n} calls from new numbers "
          f"({steps / n:.1f} plan steps each on average)")
    for name, label in (("ours", "route() (full plan, explained)"),
                        ("naive", "naive full scan (baseline)")):
        for clock, samples in (("wall", walls[name]), ("cpu ", cpus[name])):
            p = percentiles(samples)
            print(f"  {label:32s} {clock} p50 {p['p50']:6.3f} ms  p95 {p['p95']:6.3f} ms  "
                  f"p99 {p['p99']:6.3f} ms  max {p['max']:6.2f} ms")
    svc = RoutingService(routing)
    for p in pres.values():
        svc.presence.put(p)
    for r in reqs[:200]:
        svc.enqueue(r, NOW)
    queued = len(svc.queues.waiting())
    t = time.perf_counter()
    offers = svc.dispatch(NOW)
    print(f"  dispatch with {queued} calls waiting: {len(offers)} offers in "
          f"{(time.perf_counter() - t) * 1e3:.1f} ms")


def burst_config(n_agents: int) -> RoutingConfig:
    return RoutingConfig.model_validate({
        "agents": {f"b{i:02d}": {"name": f"B{i}", "languages": ["zh"]} for i in range(n_agents)},
        "groups": {"burst": {"strategy": "longest_idle", "members": [f"b{i:02d}" for i in
                                                                     range(n_agents)],
                             "max_wait_s": 86_400, "wrap_up_s": 10}},
        "hotlines": [{"number": "4008001234", "default": {"group": "burst"}}],
    })


def naive_burst(arrivals: list[tuple[float, str]], handle: dict[str, float], n_agents: int,
                answer_after_s: float, wrap_s: float, rng: random.Random) -> dict[str, float]:
    """Agents take any waiting call (random order) as soon as they are free."""
    free_at = [0.0] * n_agents
    waiting: list[tuple[float, str]] = []
    waits: dict[str, float] = {}
    events = list(arrivals)
    heapq.heapify(events)
    now = 0.0
    while events or waiting:
        next_free = min(free_at)
        if events and (not waiting or events[0][0] <= max(next_free, now)):
            now, call = heapq.heappop(events)
            waiting.append((now, call))
            continue
        now = max(now, next_free)
        agent = free_at.index(next_free)
        arrived, call = waiting.pop(rng.randrange(len(waiting)))
        waits[call] = now + answer_after_s - arrived
        free_at[agent] = now + answer_after_s + handle[call] + wrap_s
    return waits


def spread(waits: list[float], answered_at: list[float]) -> dict[str, float]:
    """Waits in arrival order: their spread, and how many callers someone later overtook."""
    ordered = sorted(waits)
    q = statistics.quantiles(ordered, n=100)
    overtaken = sum(1 for i, a in enumerate(answered_at) if any(b < a for b in answered_at[i + 1:]))
    return {"mean": statistics.fmean(waits), "p5": q[4], "p95": q[94], "max": ordered[-1],
            "std": statistics.pstdev(waits), "overtaken": overtaken}


def bench_fairness(n_calls: int, seed: int, window_s: float, n_agents: int = 20) -> None:
    rng = random.Random(seed)
    handle = {f"c{i:03d}": rng.expovariate(1 / 120) for i in range(n_calls)}
    offsets = sorted(rng.uniform(0, window_s) for _ in range(n_calls))
    calls = list(handle)
    arrivals = [Arrival(RouteRequest(call_id=c, hotline_number="4008001234"),
                        NOW + timedelta(seconds=s)) for c, s in zip(calls, offsets, strict=True)]
    t = time.perf_counter()
    results = simulate(CompiledRouting(burst_config(n_agents)), arrivals,
                       AgentSetup(tuple(f"b{i:02d}" for i in range(n_agents))),
                       handle_s=lambda c: handle[c], answer_after_s=3.0, seed=seed)
    sim_s = time.perf_counter() - t
    assert all(r.outcome == "answered" for r in results)
    ours = [r.wait_s or 0.0 for r in results]
    naive = naive_burst(list(zip(offsets, calls, strict=True)), handle, n_agents, 3.0, 10.0,
                        random.Random(seed))
    naive_waits = [naive[c] for c in calls]
    print(f"fairness, {n_calls} calls within {window_s:.0f} s onto {n_agents} agents (handle "
          f"mean 120 s); simulated in {sim_s:.1f} s")
    for name, waits in (("service (priority, then FIFO)", ours),
                        ("naive: any waiting call (baseline)", naive_waits)):
        answered_at = [o + w for o, w in zip(offsets, waits, strict=True)]
        s = spread(waits, answered_at)
        print(f"  {name:36s} wait mean {s['mean']:5.0f} s  p5 {s['p5']:5.0f}  p95 {s['p95']:5.0f}"
              f"  max {s['max']:5.0f}  spread p95-p5 {s['p95'] - s['p5']:5.0f} s  "
              f"std {s['std']:5.0f} s  overtaken {s['overtaken']}/{n_calls}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-decisions", action="store_true")
    args = parser.parse_args()
    if not args.skip_decisions:
        bench_decisions(args.decisions, args.seed)
    for window_s in (20.0, 300.0):
        bench_fairness(args.burst, args.seed, window_s)


if __name__ == "__main__":
    main()
