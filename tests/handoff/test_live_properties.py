"""Property: through the live layer (offers rung on desks, answers that race the ring timeout,
late answers to offers that already ended, declines, callers hanging up, calls ending), no
agent ever has two calls at once and no call is with two agents."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.handoff.desk import DeskHub
from app.handoff.live import CallLink, Connected, LiveRouting, Ringing
from app.handoff.packet import HandoffPacket
from app.routing.config import STRATEGIES
from app.routing.service import RoutingService
from tests.helpers.routing import MONDAY_10, NUMBER, SHANGHAI_FIXED, compiled, config, request

AGENTS = ("a1", "a2", "a3")
op = st.one_of(
    st.tuples(st.just("call")),
    st.tuples(st.just("answer"), st.integers(0, 20)),
    st.tuples(st.just("late_answer"), st.integers(0, 20)),
    st.tuples(st.just("decline"), st.integers(0, 20)),
    st.tuples(st.just("time"), st.floats(0.5, 12)),
    st.tuples(st.just("hangup"), st.integers(0, 20)),
    st.tuples(st.just("end"), st.integers(0, 20)),
    st.tuples(st.just("status"), st.sampled_from(AGENTS),
              st.sampled_from(("available", "away", "offline"))),
)


class Scenario:
    def __init__(self, strategy: str) -> None:
        cfg = config({a: {"name": a, "languages": ["zh"], "skills": {"general": 1}}
                      for a in AGENTS},
                     {"g": {"strategy": strategy, "members": list(AGENTS), "max_wait_s": 60,
                            "ring_timeout_s": 5, "wrap_up_s": 2, "overflow_if_empty": False}},
                     [{"name": "all", "target": {"group": "g"}}],
                     offers={"max_missed_offers": 2, "no_answer_delay_s": 3,
                             "reject_delay_s": 3})
        self.now = MONDAY_10
        self.live = LiveRouting(RoutingService(compiled(cfg)), DeskHub(), clock=lambda: self.now)
        self.links: list[CallLink] = []
        self.seen: list[Ringing] = []  # every offer rung, for answers that come late
        self.active: dict[str, str] = {}  # call -> agent on it
        self.calls = 0

    async def login(self) -> None:
        for agent in AGENTS:
            await self.live.set_status(agent, "available", None)

    async def run(self, step: tuple[Any, ...]) -> None:
        kind, live = step[0], self.live
        ringing = sorted(live.ringing.values(), key=lambda r: r.offer.id)
        self.seen.extend(r for r in ringing if r not in self.seen)
        if kind == "call":
            self.calls += 1
            call_id = f"c{self.calls}"
            packet = HandoffPacket(call_id=call_id, hotline_number=NUMBER,
                                   caller_number=SHANGHAI_FIXED, caller_region="上海",
                                   locale="zh", queue="general", reason="test")
            link = CallLink(call_id, request(call_id=call_id), packet, lambda e: None)
            self.links.append(link)
            await live.enqueue(link)
        elif kind == "answer" and ringing:
            ring = ringing[step[1] % len(ringing)]
            await live.answered(ring, "web", object())  # type: ignore[arg-type]
        elif kind == "late_answer" and self.seen:
            ring = self.seen[step[1] % len(self.seen)]
            await live.answered(ring, "web", object())  # type: ignore[arg-type]
        elif kind == "decline" and ringing:
            ring = ringing[step[1] % len(ringing)]
            await live.device_failed(ring, "web", "declined", "declined at the desk")
        elif kind == "time":
            self.now += timedelta(seconds=step[1])
            live.service.tick(self.now)
            await live.dispatch()
        elif kind == "hangup":
            waiting = sorted(e.call_id for e in live.service.queues.waiting())
            if waiting:
                await live.leave(waiting[step[1] % len(waiting)])
        elif kind == "end" and self.active:
            call_id = sorted(self.active)[step[1] % len(self.active)]
            await live.call_ended(self.active.pop(call_id), call_id, 10.0, "g")
        elif kind == "status":
            await live.set_status(step[1], step[2], "break" if step[2] == "away" else None)
        self.collect()

    def collect(self) -> None:
        for link in self.links:
            while not link.decisions.empty():
                decision = link.decisions.get_nowait()
                if not isinstance(decision, Connected):
                    continue
                assert link.call_id not in self.active, (
                    f"{link.call_id} connected to {decision.agent_id} while with "
                    f"{self.active[link.call_id]}")
                busy = [c for c, a in self.active.items() if a == decision.agent_id]
                assert not busy, f"{decision.agent_id} got {link.call_id} while on {busy}"
                self.active[link.call_id] = decision.agent_id


async def play(strategy: str, steps: list[tuple[Any, ...]]) -> int:
    scenario = Scenario(strategy)
    try:
        await scenario.login()
        for step in steps:
            await scenario.run(step)
        return len(scenario.active)
    finally:
        await scenario.live.aclose()


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(strategy=st.sampled_from(STRATEGIES), steps=st.lists(op, min_size=5, max_size=60))
def test_no_agent_gets_two_calls_at_once(strategy: str, steps: list[tuple[Any, ...]]) -> None:
    asyncio.run(play(strategy, steps))


def test_an_answer_after_the_ring_ended_does_not_connect() -> None:
    """The example the property is about: a desk answering an offer that timed out."""

    async def main() -> None:
        scenario = Scenario("sequential")
        try:
            await scenario.login()
            await scenario.run(("call",))
            (ring,) = scenario.live.ringing.values()
            await scenario.run(("time", 6.0))  # past the 5 s ring timeout: the next agent rings
            assert ring.offer.id not in scenario.live.ringing
            assert not await scenario.live.answered(ring, "web", object())  # type: ignore[arg-type]
            scenario.collect()
            assert scenario.active == {}
        finally:
            await scenario.live.aclose()

    asyncio.run(main())
