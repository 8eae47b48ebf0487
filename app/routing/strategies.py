"""Distribution strategies: pure functions ordering a group's eligible agents.

Each takes the eligible members (``Member`` views with the stats it needs) and a context
(the seed for random strategies, the group's round-robin memory, now) and returns the agents
best first with a short why. Random strategies draw from ``random.Random(seed)``; the engine
derives the seed from the call id and the group (``stable_seed``) so a decision replays the
same way in another process.

- ``sequential`` (top-down): member order, every time.
- ``ring_all``: member order, offered all at once (the plan marks the step simultaneous).
- ``random``: a shuffle.                 - ``weighted_random``: a shuffle biased by weight.
- ``round_robin``: member order, starting after the member offered last (memory).
- ``longest_idle``: free the longest first.
- ``fewest_calls``: fewest calls today first, then longest idle.
- ``least_talk_time``: least talk time today first, then longest idle.
- ``skills_based``: best level for the call's skills first, then longest idle.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.routing.config import Strategy

_EPOCH = datetime(1970, 1, 1).timestamp()


@dataclass(frozen=True, slots=True)
class Member:
    """One eligible agent as a strategy sees it."""

    agent_id: str
    position: int  # place in the group's member order (order, then list position)
    weight: int = 1
    level: int = 0  # sum of the agent's levels in the skills the call needs
    idle_since: datetime | None = None
    calls_today: int = 0
    talk_s_today: float = 0.0


@dataclass(frozen=True, slots=True)
class Context:
    now: datetime
    seed: int = 0
    last_position: int | None = None  # round robin: member order index offered last
    group_size: int = 0


Ordered = list[tuple[str, str]]  # (agent_id, why)


def stable_seed(*parts: str) -> int:
    """A seed that is the same in every process (``hash()`` is salted per process)."""
    return zlib.crc32(":".join(parts).encode("utf-8"))


def _idle_key(m: Member) -> float:
    return m.idle_since.timestamp() if m.idle_since is not None else _EPOCH


def _idle_why(m: Member, now: datetime) -> str:
    if m.idle_since is None:
        return "idle since login"
    return f"idle {max(0, round((now - m.idle_since).total_seconds()))} s"


def _sequential(members: Sequence[Member], ctx: Context) -> Ordered:
    return [(m.agent_id, f"order {m.position + 1}") for m in
            sorted(members, key=lambda m: m.position)]


def _random(members: Sequence[Member], ctx: Context) -> Ordered:
    shuffled = sorted(members, key=lambda m: m.position)
    random.Random(ctx.seed).shuffle(shuffled)
    return [(m.agent_id, "random draw") for m in shuffled]


def _weighted(members: Sequence[Member], ctx: Context) -> Ordered:
    """Weighted shuffle without replacement (Efraimidis-Spirakis: key = u ** (1 / w))."""
    rng = random.Random(ctx.seed)
    keyed = [(rng.random() ** (1.0 / m.weight), m) for m in
             sorted(members, key=lambda m: m.position)]
    keyed.sort(key=lambda km: km[0], reverse=True)
    return [(m.agent_id, f"weight {m.weight}") for _, m in keyed]


def _round_robin(members: Sequence[Member], ctx: Context) -> Ordered:
    size = max(ctx.group_size, max((m.position for m in members), default=0) + 1)
    last = -1 if ctx.last_position is None else ctx.last_position
    ordered = sorted(members, key=lambda m: (m.position - last - 1) % size)
    return [(m.agent_id, "next in turn") for m in ordered]


def _longest_idle(members: Sequence[Member], ctx: Context) -> Ordered:
    ordered = sorted(members, key=lambda m: (_idle_key(m), m.position))
    return [(m.agent_id, _idle_why(m, ctx.now)) for m in ordered]


def _fewest_calls(members: Sequence[Member], ctx: Context) -> Ordered:
    ordered = sorted(members, key=lambda m: (m.calls_today, _idle_key(m), m.position))
    return [(m.agent_id, f"{m.calls_today} call(s) today") for m in ordered]


def _least_talk(members: Sequence[Member], ctx: Context) -> Ordered:
    ordered = sorted(members, key=lambda m: (m.talk_s_today, _idle_key(m), m.position))
    return [(m.agent_id, f"talked {round(m.talk_s_today)} s today") for m in ordered]


def _skills(members: Sequence[Member], ctx: Context) -> Ordered:
    ordered = sorted(members, key=lambda m: (-m.level, _idle_key(m), m.position))
    return [(m.agent_id, f"level {m.level}, {_idle_why(m, ctx.now)}") for m in ordered]


STRATEGY_FUNCS: dict[Strategy, Callable[[Sequence[Member], Context], Ordered]] = {
    "sequential": _sequential,
    "ring_all": _sequential,
    "random": _random,
    "round_robin": _round_robin,
    "weighted_random": _weighted,
    "longest_idle": _longest_idle,
    "fewest_calls": _fewest_calls,
    "least_talk_time": _least_talk,
    "skills_based": _skills,
}


def order(strategy: Strategy, members: Sequence[Member], ctx: Context) -> Ordered:
    """The eligible members best first, each with why it is where it is."""
    return STRATEGY_FUNCS[strategy](members, ctx)
