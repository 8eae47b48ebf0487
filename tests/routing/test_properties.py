"""Property tests (hypothesis): no available, skilled agent is ever skipped, and no agent
is ever given more calls than they can take, whatever happens in between."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from app.routing.config import STRATEGIES
from app.routing.engine import route
from app.routing.presence import AgentPresence, effective_state
from app.routing.service import RoutingService
from tests.helpers.routing import MONDAY_10, compiled, config, request, roster

SKILLS = ("general", "orders", "repairs")
LANGS = ("zh", "en")
NAMES = tuple(f"a{i}" for i in range(8))

agent_def = st.fixed_dictionaries({
    "languages": st.lists(st.sampled_from(LANGS), min_size=1, max_size=2, unique=True),
    "skills": st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=3),
    "max_calls": st.integers(1, 2),
})
presence_def = st.fixed_dictionaries({
    "chosen": st.sampled_from(("offline", "available", "away")),
    "calls": st.integers(0, 2),
    "offers": st.integers(0, 1),
    "wrap_up_s": st.sampled_from((None, -5.0, 30.0)),  # None: none, <0: ran out
    "delay_s": st.sampled_from((None, -5.0, 20.0)),
    "idle_s": st.floats(0, 5000),
})


def build_presence(aid: str, spec: dict[str, Any], now: datetime) -> AgentPresence:
    calls = tuple(f"{aid}-call{i}" for i in range(spec["calls"]))
    offers = tuple(f"{aid}-offer{i}" for i in range(spec["offers"]))
    wrap = spec["wrap_up_s"]
    system = ("on_call" if calls else "ringing" if offers else
              "wrap_up" if wrap is not None else "idle")
    return AgentPresence(
        aid, chosen=spec["chosen"], away_reason="break" if spec["chosen"] == "away" else None,
        system=system, calls=calls, offers=offers,
        wrap_up_until=now + timedelta(seconds=wrap) if wrap is not None else None,
        not_before=now + timedelta(seconds=spec["delay_s"]) if spec["delay_s"] else None,
        idle_since=now - timedelta(seconds=spec["idle_s"]),
    )


def oracle_eligible(agent: dict[str, Any], p: AgentPresence, group_skills: list[str],
                    locale: str, tried: tuple[str, ...], now: datetime) -> bool:
    """Written from the rules, independently of the engine's code."""
    if p.chosen != "available" or p.agent_id in tried:
        return False
    if len(p.calls) + len(p.offers) >= agent["max_calls"]:
        return False
    if p.wrap_up_until is not None and p.system == "wrap_up" and now < p.wrap_up_until:
        return False
    if p.not_before is not None and now < p.not_before:
        return False
    return all(s in agent["skills"] for s in group_skills) and locale in agent["languages"]


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    agents=st.lists(agent_def, min_size=1, max_size=len(NAMES)),
    presences=st.lists(presence_def, min_size=len(NAMES), max_size=len(NAMES)),
    group_skills=st.lists(st.sampled_from(SKILLS), max_size=2, unique=True),
    strategy=st.sampled_from(STRATEGIES),
    locale=st.sampled_from(LANGS),
    tried=st.sets(st.sampled_from(NAMES), max_size=2),
)
def test_no_available_skilled_agent_is_skipped(
        agents: list[dict[str, Any]], presences: list[dict[str, Any]], group_skills: list[str],
        strategy: str, locale: str, tried: set[str]) -> None:
    defs = {NAMES[i]: {"name": NAMES[i], **a} for i, a in enumerate(agents)}
    cfg = config(defs, {"g": {"strategy": strategy, "members": list(defs),
                              "skills": group_skills, "overflow_if_empty": False}},
                 [{"name": "all", "target": {"group": "g"}}])
    now = MONDAY_10
    state = roster({a: build_presence(a, presences[i], now) for i, a in enumerate(defs)})
    plan = route(request(locale=locale, tried=tuple(sorted(tried))), state, compiled(cfg), now)
    step = plan.steps[0]
    chosen = [c.agent for c in step.candidates]
    skipped = [s.agent for s in step.skipped]
    assert sorted(chosen + skipped) == sorted(defs)  # each member exactly once
    for aid, agent in defs.items():
        eligible = oracle_eligible(agent, state.presence[aid], group_skills, locale,
                                   tuple(tried), now)
        assert (aid in chosen) == eligible, (aid, agent, state.presence[aid], step.skipped)


class Desk(RuleBasedStateMachine):
    """Calls come and go, agents log in and out, offers are answered, rejected, missed."""

    @initialize(agents=st.lists(agent_def, min_size=2, max_size=6),
                strategy=st.sampled_from(STRATEGIES))
    def setup(self, agents: list[dict[str, Any]], strategy: str) -> None:
        defs = {NAMES[i]: {"name": NAMES[i], **a} for i, a in enumerate(agents)}
        cfg = config(defs, {"g": {"strategy": strategy, "members": list(defs),
                                  "overflow_if_empty": False, "max_wait_s": 300,
                                  "wrap_up_s": 5, "ring_timeout_s": 15}},
                     [{"name": "all", "target": {"group": "g"}}],
                     offers={"max_missed_offers": 2})
        self.cfg = cfg
        self.svc = RoutingService(compiled(cfg))
        self.now = MONDAY_10
        self.calls = 0
        self.answered: list[tuple[str, str, str | None]] = []
        for aid in defs:
            self.svc.login(aid, self.now)

    @rule(agent=st.sampled_from(NAMES), status=st.sampled_from(("available", "available",
                                                                "away", "offline")))
    def set_status(self, agent: str, status: str) -> None:
        if agent in self.cfg.agents:
            self.svc.set_status(agent, status, self.now,  # type: ignore[arg-type]
                                "meal" if status == "away" else None)

    @rule(locales=st.lists(st.sampled_from(LANGS), min_size=1, max_size=3),
          skills=st.lists(st.sampled_from(SKILLS), max_size=2))
    def calls_arrive(self, locales: list[str], skills: list[str]) -> None:
        for locale in locales:
            self.calls += 1
            self.svc.enqueue(request(call_id=f"c{self.calls}", locale=locale,
                                     skills=tuple(skills)), self.now)

    @rule()
    def dispatch(self) -> None:
        self.svc.dispatch(self.now)

    @rule(pick=st.integers(0, 50), outcome=st.sampled_from(("accept", "reject", "no_answer",
                                                            "busy")))
    def offer_outcome(self, pick: int, outcome: str) -> None:
        pending = sorted(self.svc.offers.pending(), key=lambda o: o.id)
        if not pending:
            return
        offer = pending[pick % len(pending)]
        if outcome == "accept":
            self.svc.accept(offer.id, self.now)
            self.answered.append((offer.agent_id, offer.call_id, offer.group))
        else:
            getattr(self.svc, {"reject": "reject", "no_answer": "no_answer",
                               "busy": "device_busy"}[outcome])(offer.id, self.now)

    @rule(pick=st.integers(0, 50))
    def caller_hangs_up(self, pick: int) -> None:
        waiting = sorted(e.call_id for e in self.svc.queues.waiting())
        if waiting:
            self.svc.abandon(waiting[pick % len(waiting)], self.now)

    @rule(pick=st.integers(0, 50), talk_s=st.floats(1, 600))
    def call_ends(self, pick: int, talk_s: float) -> None:
        if self.answered:
            agent, call, group = self.answered.pop(pick % len(self.answered))
            self.svc.call_ended(agent, call, talk_s, self.now, group)

    @rule(seconds=st.floats(0.5, 30))
    def time_passes(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.svc.tick(self.now)

    @invariant()
    def nobody_has_more_than_they_can_take(self) -> None:
        if not hasattr(self, "svc"):
            return
        on_call: dict[str, str] = {}
        for aid, p in self.svc.presence.snapshot().items():
            assert len(p.calls) + len(p.offers) <= self.cfg.agents[aid].max_calls, p
            for call in p.calls:
                assert call not in on_call, f"{call} is with {on_call[call]} and {aid}"
                on_call[call] = aid
            if p.calls or p.offers:
                assert effective_state(p, self.now) in ("on_call", "ringing")
        pending = list(self.svc.offers.pending())
        for offer in pending:
            p = self.svc.presence.get(offer.agent_id)
            assert p is not None and offer.id in p.offers
            entry = self.svc.queues.get(offer.call_id)
            assert entry is not None and offer.id in entry.offers
            assert offer.call_id not in on_call  # an answered call rings nobody
        assert sum(len(p.offers) for p in self.svc.presence.snapshot().values()) == len(pending)
        for entry in self.svc.queues.waiting():
            assert entry.call_id not in on_call


Desk.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                  database=None, suppress_health_check=[HealthCheck.too_slow])
TestDesk = Desk.TestCase
