"""The routing decision: ``plan = route(request, roster, routing, now)``, a pure function.

``routing`` is the configuration compiled once (``CompiledRouting``: rule checks, member
orders, calendars); ``roster`` is a snapshot of presence and round-robin memory. The plan
names the matched rule (and why each earlier rule did not match), the target, and the chain
of steps the call would take: each group step with its strategy, its eligible agents best
first and the reason every other member was skipped; then its overflow, and so on.

A group step is ``closed`` outside its calendar's hours, ``empty`` when no member is logged
in (and ``overflow_if_empty``), else ``queue``: the call waits there up to ``max_wait_s``
before the overflow. ``starts_after_s`` adds those waits up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from app.routing.conditions import (
    CachedCalendar,
    Check,
    Facts,
    compile_when,
    facts,
    first_failure,
)
from app.routing.config import Agent, Group, Hotline, RoutingConfig, Rule, Target, digits
from app.routing.plan import (
    Candidate,
    PlanSource,
    RoutePlan,
    RouteRequest,
    RuleCheck,
    Skip,
    SkipReason,
    Step,
    StepKind,
    TimeFacts,
)
from app.routing.presence import AgentPresence, effective_state, idle_since
from app.routing.region import lookup
from app.routing.strategies import Context, Member, order, stable_seed


@dataclass(frozen=True)
class GroupIndex:
    id: str
    cfg: Group
    members: tuple[str, ...]  # by (order, list position)
    position: dict[str, int]
    weight: dict[str, int]
    skills: frozenset[str]
    calendar: CachedCalendar | None


@dataclass(frozen=True)
class HotlineIndex:
    cfg: Hotline
    rules: tuple[tuple[Rule, tuple[Check, ...]], ...]
    calendar: CachedCalendar | None


class CompiledRouting:
    """A ``RoutingConfig`` prepared for fast decisions (immutable; build a new one to
    change the configuration)."""

    def __init__(self, config: RoutingConfig) -> None:
        self.config = config
        self.calendars = {name: CachedCalendar(c) for name, c in config.calendars.items()}
        self.agents: dict[str, Agent] = dict(config.agents)
        self.groups: dict[str, GroupIndex] = {
            gid: _index_group(gid, g, self.calendars) for gid, g in config.groups.items()
        }
        self.hotlines: dict[str, HotlineIndex] = {
            h.digits: HotlineIndex(
                h, tuple((r, compile_when(r.when)) for r in h.rules),
                self.calendars.get(h.calendar) if h.calendar else None,
            )
            for h in config.hotlines
        }
        self.member_of: dict[str, tuple[str, ...]] = {}
        for gid, g in self.groups.items():
            for aid in g.members:
                self.member_of[aid] = (*self.member_of.get(aid, ()), gid)
        self._static: dict[tuple[str, str], dict[str, tuple[SkipReason, str]]] = {}
        self.devices = {aid: tuple(d.address for d in a.devices) for aid, a in self.agents.items()}

    def static_skips(self, group: GroupIndex, locale: str) -> dict[str, tuple[SkipReason, str]]:
        """Members who can never take this group's calls in ``locale`` (skills, language),
        worked out once per group and locale: the configuration does not change."""
        key = (group.id, locale)
        found = self._static.get(key)
        if found is None:
            found = {}
            for aid in group.members:
                why = static_skip(self.agents.get(aid), group, locale)
                if why is not None:
                    found[aid] = why
            self._static[key] = found
        return found


def _index_group(gid: str, group: Group, calendars: dict[str, CachedCalendar]) -> GroupIndex:
    ranked = sorted(enumerate(group.members),
                    key=lambda im: (im[1].order if im[1].order is not None else im[0], im[0]))
    members = tuple(m.agent for _, m in ranked)
    return GroupIndex(
        id=gid, cfg=group, members=members,
        position={a: i for i, a in enumerate(members)},
        weight={m.agent: m.weight for m in group.members},
        skills=frozenset(group.skills),
        calendar=calendars.get(group.calendar) if group.calendar else None,
    )


@dataclass(frozen=True)
class RosterState:
    """What the decision reads about agents: presence, and each group's round-robin memory
    (the agent offered last)."""

    presence: Mapping[str, AgentPresence] = field(default_factory=dict)
    last_offered: Mapping[str, str] = field(default_factory=dict)


def static_skip(agent: Agent | None, group: GroupIndex, locale: str
                ) -> tuple[SkipReason, str] | None:
    """Why this agent never takes this group's calls in ``locale`` (None: they may)."""
    if agent is None:
        return "unknown_agent", "not in the roster"
    missing = [s for s in group.skills if s not in agent.skills]
    if missing:
        return "missing_skill", f"lacks {', '.join(sorted(missing))}"
    if group.cfg.match_language and locale not in agent.languages:
        return "wrong_language", f"speaks {', '.join(agent.languages)}, call is {locale}"
    return None


def presence_skip(agent_id: str, agent: Agent, presence: AgentPresence | None,
                  request: RouteRequest, now: datetime) -> tuple[SkipReason, str] | None:
    """Why this agent cannot be offered this call now, by their state (None: they can)."""
    if presence is None:
        return "offline", "not logged in"
    load = len(presence.calls) + len(presence.offers)
    if presence.calls and load >= agent.max_calls:
        return "busy", f"on {len(presence.calls)} call(s)"
    if presence.offers and load >= agent.max_calls:
        return "ringing", "another call is ringing"
    # The chosen status counts even during a call: an agent going away takes no new call.
    if presence.chosen == "offline":
        return "offline", "logging out" if load else ""
    if presence.chosen == "away":
        return "away", presence.away_reason or ""
    until = presence.wrap_up_until
    if presence.system == "wrap_up" and not load and until is not None and now < until:
        return "wrap_up", f"{round((until - now).total_seconds())} s left"
    if presence.not_before is not None and now < presence.not_before:
        return "delayed", f"{round((presence.not_before - now).total_seconds())} s left " \
                          "after a missed offer"
    if agent_id in request.tried:
        return "already_tried", "was offered this call already"
    return None


def skip_reason(agent_id: str, agent: Agent | None, presence: AgentPresence | None,
                group: GroupIndex | None, request: RouteRequest, now: datetime
                ) -> tuple[SkipReason, str] | None:
    """Why this agent cannot be offered this call now (None: eligible)."""
    if agent is None:
        return "unknown_agent", "not in the roster"
    if group is not None:
        why = static_skip(agent, group, request.locale)
        if why is not None:
            return why
    return presence_skip(agent_id, agent, presence, request, now)


RawSkip = tuple[str, SkipReason, str]


def any_logged_in(group: GroupIndex, presence: Mapping[str, AgentPresence], now: datetime
                  ) -> bool:
    return any(effective_state(presence[a], now) != "offline"
               for a in group.members if a in presence)


def rank_group(routing: CompiledRouting, roster: RosterState, request: RouteRequest,
               group: GroupIndex, now: datetime, sticky: tuple[str, str] | None = None,
               exclude: frozenset[str] = frozenset()
               ) -> tuple[list[tuple[str, str]], list[RawSkip]]:
    """The group's eligible members best first (agent, why) and the skipped ones
    (agent, reason, detail); ``exclude``: agents to leave out silently (already reserved)."""
    eligible: list[Member] = []
    skipped: list[RawSkip] = []
    wanted = group.skills | set(request.skills) if group.cfg.strategy == "skills_based" else ()
    static = routing.static_skips(group, request.locale)
    agents, presences = routing.agents, roster.presence
    for aid in group.members:
        if aid in exclude:
            continue
        why = static.get(aid)
        agent = agents[aid] if why is None else None
        presence = presences.get(aid)
        if agent is not None:
            why = presence_skip(aid, agent, presence, request, now)
        if why is not None or agent is None or presence is None:
            reason, detail = why or ("unknown_agent", "")
            skipped.append((aid, reason, detail))
            continue
        eligible.append(Member(
            aid, group.position[aid], group.weight[aid],
            sum(agent.skills.get(s, 0) for s in wanted) if wanted else 0,
            idle_since(presence, now), presence.calls_today, presence.talk_s_today,
        ))
    last = roster.last_offered.get(group.id)
    ctx = Context(now=now, seed=stable_seed(request.call_id, group.id),
                  last_position=group.position.get(last) if last else None,
                  group_size=len(group.members))
    ranked = order(group.cfg.strategy, eligible, ctx)
    if sticky is not None and any(a == sticky[0] for a, _ in ranked):
        ranked = [sticky, *[(a, w) for a, w in ranked if a != sticky[0]]]
    return ranked, skipped


class _Planner:
    """Builds one plan: the steps of a target and its overflow chain."""

    def __init__(self, routing: CompiledRouting, roster: RosterState, request: RouteRequest,
                 now: datetime, hotline: Hotline | None) -> None:
        self.routing = routing
        self.roster = roster
        self.request = request
        self.now = now
        self.hotline = hotline
        self.steps: list[Step] = []
        self.seen: set[str] = set()
        self.split_note = ""

    def expand(self, target: Target | None, at_s: float, overflow: Target | None = None
               ) -> None:
        while target is not None:
            key = target.describe()
            if key in self.seen:  # check_refs rejects cycles; never loop on a bad config
                return
            self.seen.add(key)
            step, wait_s, target = self._step(target, at_s, overflow)
            overflow = None
            self.steps.append(step)
            at_s += wait_s

    def _step(self, target: Target, at_s: float, overflow: Target | None
              ) -> tuple[Step, float, Target | None]:
        policy = self.routing.config.offers
        if target.split:
            bucket = stable_seed(self.request.call_id, "split") % 100
            total = 0
            chosen = target.split[-1]
            for part in target.split:
                total += part.percent
                if bucket < total:
                    chosen = part
                    break
            self.split_note = f"split bucket {bucket} -> {chosen.group} ({chosen.percent}%)"
            return self._step(Target(group=chosen.group), at_s, overflow)
        if target.group:
            return self._group_step(self.routing.groups[target.group], at_s)
        if target.agent:
            step = self._agent_step(target.agent, at_s, policy.agent_ring_timeout_s)
            wait = policy.agent_ring_timeout_s if step.status == "ring" else 0.0
            return step, wait, overflow
        if target.number:
            step = Step(kind="number", number=target.number, status="ring",
                        ring_timeout_s=policy.number_ring_timeout_s, starts_after_s=at_s)
            return step, policy.number_ring_timeout_s, overflow
        kind: StepKind = "voicemail" if target.voicemail else "callback"
        return Step(kind=kind, status="final", starts_after_s=at_s), 0.0, None

    def _agent_step(self, agent_id: str, at_s: float, ring_s: float) -> Step:
        agent = self.routing.agents.get(agent_id)
        why = skip_reason(agent_id, agent, self.roster.presence.get(agent_id), None,
                          self.request, self.now)
        step = Step(kind="agent", agent=agent_id, status="ring" if why is None else
                    "unavailable", ring_timeout_s=ring_s, starts_after_s=at_s)
        if why is None and agent is not None:
            step.candidates.append(Candidate(agent_id, agent.name, self.routing.devices[agent_id],
                                             "the rule's agent"))
        elif why is not None:
            step.skipped.append(Skip(agent=agent_id, reason=why[0], detail=why[1]))
            step.detail = why[0]
        return step

    def _group_step(self, group: GroupIndex, at_s: float
                    ) -> tuple[Step, float, Target | None]:
        cfg = group.cfg
        step = Step(kind="group", group=group.id, status="queue", strategy=cfg.strategy,
                    simultaneous=cfg.strategy == "ring_all", ring_timeout_s=cfg.ring_timeout_s,
                    max_wait_s=cfg.max_wait_s, starts_after_s=at_s)
        if group.calendar is not None:
            status = group.calendar.status(self.now)
            if status != "open":
                step.status, step.detail = "closed", f"outside hours ({status})"
                step.skipped = [Skip(agent=a, reason="outside_hours", detail=status)
                                for a in group.members]
                return step, 0.0, cfg.overflow
        step.candidates, step.skipped = self._ranked(group, first=not self.steps)
        if cfg.overflow_if_empty and not any_logged_in(group, self.roster.presence, self.now):
            step.status, step.detail = "empty", "no member logged in"
            return step, 0.0, cfg.overflow
        return step, cfg.max_wait_s, cfg.overflow

    def _ranked(self, group: GroupIndex, first: bool) -> tuple[list[Candidate], list[Skip]]:
        ranked, skipped = rank_group(self.routing, self.roster, self.request, group, self.now,
                                     sticky_choice(self.hotline, self.request, self.now) if first
                                     else None)
        agents, devices = self.routing.agents, self.routing.devices
        return ([Candidate(a, agents[a].name, devices[a], why) for a, why in ranked],
                [Skip(a, r, d) for a, r, d in skipped])


def sticky_choice(hotline: Hotline | None, request: RouteRequest, now: datetime
                  ) -> tuple[str, str] | None:
    """The caller's last agent, when they were served within the hotline's sticky window."""
    if hotline is None or hotline.sticky_window_h <= 0 or request.last_agent is None \
            or request.last_served_at is None:
        return None
    age_h = (now - request.last_served_at).total_seconds() / 3600
    if not 0 <= age_h <= hotline.sticky_window_h:
        return None
    return request.last_agent, f"sticky: served this caller {age_h:.1f} h ago"


def _match(hotline_index: HotlineIndex, f: Facts) -> tuple[list[RuleCheck], Rule | None, int]:
    checks: list[RuleCheck] = []
    for i, (rule, rule_checks) in enumerate(hotline_index.rules):
        failure = first_failure(rule_checks, f)
        checks.append(RuleCheck(index=i + 1, name=rule.name, matched=failure is None,
                                reason=failure or "matched"))
        if failure is None:
            return checks, rule, i + 1
    return checks, None, 0


def route(request: RouteRequest, roster: RosterState, routing: CompiledRouting,
          now: datetime) -> RoutePlan:
    """The routing plan for ``request`` at ``now``; never raises for a valid request."""
    index = routing.hotlines.get(digits(request.hotline_number))
    hotline = index.cfg if index else None
    region = lookup(request.caller_number)
    f = facts(request, region, now, index.calendar if index else None)
    checks, rule, rule_index = _match(index, f) if index else ([], None, 0)
    source: PlanSource = "none"
    target: Target | None = None
    if request.transfer_to is not None:
        checks, rule, rule_index = [], None, 0
        source, target = "transfer", request.transfer_to
        reason = (f"transferred by {request.transferred_by or 'an agent'}: "
                  f"{target.describe()}")
    elif rule is not None:
        source, target = "rule", rule.target
        reason = f"rule {rule_index} {rule.name!r} matched: {target.describe()}"
    elif hotline is not None and hotline.default is not None:
        source, target = "default", hotline.default
        reason = f"no rule matched: the hotline's default, {target.describe()}"
    elif request.queue and request.queue in routing.groups:
        source, target = "flow_queue", Target(group=request.queue)
        reason = f"no rule matched: the flow's queue {request.queue!r} is a group"
    else:
        reason = ("no rule matched and no default" if index else
                  f"hotline {request.hotline_number} has no routing")
        if request.queue:
            reason += f"; no group named {request.queue!r}"
    planner = _Planner(routing, roster, request, now, hotline)
    planner.expand(target, 0.0, rule.overflow if rule else None)
    if planner.split_note:
        reason += f" ({planner.split_note})"
    return RoutePlan(
        call_id=request.call_id, hotline_number=request.hotline_number,
        flow=hotline.flow if hotline else None, at=now,
        time=TimeFacts(local=f.local, day=f.day, calendar=f.calendar), caller=region,
        source=source, rule=rule.name if rule else None,
        rule_index=rule_index or None, rules=checks, target=target,
        priority=request.priority + (rule.priority if rule else 0), steps=planner.steps,
        reason=reason,
    )
