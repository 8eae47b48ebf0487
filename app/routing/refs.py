"""References between the sections of a routing document, checked after the schema.

A member naming an unknown agent, a target naming an unknown group, an overflow cycle, a
calendar condition without a calendar, an intent the catalog does not know, a hotline whose
flow does not exist or has no such queue (``check_flows``): each problem
comes with the document path it concerns, so the loader can name the file line.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.flows.schema import Flow
from app.routing.config import Group, Hotline, Path_, RoutingConfig, Target, check_id


def check_refs(config: RoutingConfig, known_intents: set[str] | None = None
               ) -> list[tuple[Path_, str]]:
    """Problems between sections, each with the document path it concerns."""
    problems: list[tuple[Path_, str]] = []
    problems += _check_ids(config)
    for gid, group in config.groups.items():
        problems += _check_group(config, gid, group)
    problems += _check_overflow_cycles(config)
    seen: dict[str, int] = {}
    for i, hotline in enumerate(config.hotlines):
        base: Path_ = ("hotlines", str(i))
        if hotline.digits in seen:
            problems.append(((*base, "number"), f"hotline {hotline.number} is listed twice "
                             f"(also hotlines[{seen[hotline.digits]}])"))
        seen.setdefault(hotline.digits, i)
        problems += _check_hotline(config, base, hotline, known_intents)
    return problems


def _check_ids(config: RoutingConfig) -> list[tuple[Path_, str]]:
    problems: list[tuple[Path_, str]] = []
    for section in ("agents", "groups", "calendars"):
        for key in getattr(config, section):
            try:
                check_id(section[:-1], key)
            except ValueError as exc:
                problems.append(((section, key), str(exc)))
    return problems


def _check_target(config: RoutingConfig, path: Path_, target: Target) -> list[tuple[Path_, str]]:
    problems: list[tuple[Path_, str]] = []
    groups = [target.group] if target.group else [s.group for s in target.split or []]
    for i, gid in enumerate(groups):
        if gid not in config.groups:
            sub = ("group",) if target.group else ("split", str(i), "group")
            problems.append(((*path, *sub), f"unknown group {gid!r} "
                             f"(groups: {', '.join(sorted(config.groups)) or 'none'})"))
    if target.agent and target.agent not in config.agents:
        problems.append(((*path, "agent"), f"unknown agent {target.agent!r}"))
    return problems


def _check_group(config: RoutingConfig, gid: str, group: Group) -> list[tuple[Path_, str]]:
    base: Path_ = ("groups", gid)
    problems: list[tuple[Path_, str]] = []
    seen: set[str] = set()
    for i, member in enumerate(group.members):
        if member.agent not in config.agents:
            problems.append(((*base, "members", str(i)), f"group {gid!r}: unknown agent "
                             f"{member.agent!r}"))
        elif member.agent in seen:
            problems.append(((*base, "members", str(i)), f"group {gid!r}: agent "
                             f"{member.agent!r} listed twice"))
        seen.add(member.agent)
    if group.calendar is not None and group.calendar not in config.calendars:
        problems.append(((*base, "calendar"), f"unknown calendar {group.calendar!r}"))
    if group.overflow is not None:
        problems += _check_target(config, (*base, "overflow"), group.overflow)
    return problems


def _check_overflow_cycles(config: RoutingConfig) -> list[tuple[Path_, str]]:
    problems: list[tuple[Path_, str]] = []
    reported: set[frozenset[str]] = set()
    for start in config.groups:
        chain = [start]
        current = config.groups[start].overflow
        while current is not None and current.group and current.group in config.groups:
            if current.group in chain:
                cycle = chain[chain.index(current.group):]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    text = " -> ".join([*cycle, current.group])
                    problems.append(((("groups", chain[-1], "overflow")),
                                     f"overflow cycle: {text}"))
                break
            chain.append(current.group)
            current = config.groups[current.group].overflow
    return problems


def _check_hotline(config: RoutingConfig, base: Path_, hotline: Hotline,
                   known_intents: set[str] | None) -> list[tuple[Path_, str]]:
    problems: list[tuple[Path_, str]] = []
    if hotline.calendar is not None and hotline.calendar not in config.calendars:
        problems.append(((*base, "calendar"), f"unknown calendar {hotline.calendar!r}"))
    if hotline.default is not None:
        problems += _check_target(config, (*base, "default"), hotline.default)
    names: set[str] = set()
    for j, rule in enumerate(hotline.rules):
        rpath: Path_ = (*base, "rules", str(j))
        if rule.name in names:
            problems.append(((*rpath, "name"), f"rule name {rule.name!r} used twice"))
        names.add(rule.name)
        problems += _check_target(config, (*rpath, "target"), rule.target)
        if rule.overflow is not None:
            problems += _check_target(config, (*rpath, "overflow"), rule.overflow)
        if rule.when.calendar is not None and hotline.calendar is None:
            problems.append(((*rpath, "when", "calendar"), "a calendar condition needs the "
                             "hotline's `calendar:`"))
        for intent in rule.when.intent or []:
            if known_intents is not None and intent not in known_intents:
                problems.append(((*rpath, "when", "intent"), f"unknown intent {intent!r} "
                                 "(not defined in intents/)"))
    return problems


def check_flows(config: RoutingConfig, flows: Mapping[str, Flow]) -> list[tuple[Path_, str]]:
    """Hotlines against the IVR flows: the flow exists and serves the number; rules on the
    flow's queue or skills name queues and skills that flow has."""
    problems: list[tuple[Path_, str]] = []
    for i, hotline in enumerate(config.hotlines):
        base: Path_ = ("hotlines", str(i))
        if hotline.flow is None:
            continue
        flow = flows.get(hotline.flow)
        if flow is None:
            problems.append(((*base, "flow"), f"flow {hotline.flow!r} not found "
                             f"(flows: {', '.join(sorted(flows)) or 'none'})"))
            continue
        numbers = {"".join(c for c in n if c.isdigit()) for n in flow.hotline_numbers}
        if numbers and hotline.digits not in numbers:
            problems.append(((*base, "number"), f"flow {flow.id!r} serves "
                             f"{', '.join(flow.hotline_numbers)}, not {hotline.number}"))
        for node in hotline.handback:
            if node not in flow.nodes:
                problems.append(((*base, "handback", node), f"flow {flow.id!r} has no node "
                                 f"{node!r} to hand callers back to"))
        skills = {s for q in flow.queues.values() for s in q.skills}
        for j, rule in enumerate(hotline.rules):
            when: Path_ = (*base, "rules", str(j), "when")
            for queue in rule.when.queue or []:
                if queue not in flow.queues:
                    problems.append(((*when, "queue"), f"flow {flow.id!r} has no queue "
                                     f"{queue!r} ({', '.join(sorted(flow.queues))})"))
            for skill in rule.when.skill or []:
                if skill not in skills:
                    problems.append(((*when, "skill"), f"no queue of flow {flow.id!r} asks "
                                     f"for skill {skill!r}"))
    return problems
