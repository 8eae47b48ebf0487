"""The routing configuration in the database: import (replace all), load, seed.

The YAML file is the version-controlled interchange; the database is what a running
server uses. ``save`` replaces the whole configuration in one transaction (a failed import
leaves the previous one intact); ``load`` reads it back through the same validation as a
file, so the database never hands out a configuration a file could not express.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.log import get_logger
from app.routing.config import RoutingConfig
from app.routing.loader import load_file
from app.routing.refs import check_refs
from app.storage.db import Database
from app.storage.errors import DatabaseUnavailableError
from app.storage.models import (
    RoutingAgentRow,
    RoutingCalendarRow,
    RoutingGroupRow,
    RoutingHotlineRow,
    RoutingMemberRow,
    RoutingMetaRow,
    RoutingRuleRow,
)

_GROUP_COLUMNS = ("name", "strategy", "skills", "ring_timeout_s", "max_wait_s", "wrap_up_s",
                  "priority", "calendar", "overflow")
_PG_LOCK = 0x526F7574  # "Rout": serializes imports across processes
# Children before parents (foreign keys).
_TABLES = (RoutingRuleRow, RoutingHotlineRow, RoutingMemberRow, RoutingGroupRow,
           RoutingAgentRow, RoutingCalendarRow, RoutingMetaRow)


@dataclass(frozen=True)
class Summary:
    agents: int
    groups: int
    hotlines: int
    rules: int
    source: str | None = None
    imported_at: str | None = None

    def line(self) -> str:
        return (f"{self.agents} agent(s), {self.groups} group(s), {self.hotlines} hotline(s), "
                f"{self.rules} rule(s)")


def summarize(config: RoutingConfig, source: str | None = None,
              imported_at: str | None = None) -> Summary:
    return Summary(len(config.agents), len(config.groups), len(config.hotlines),
                   sum(len(h.rules) for h in config.hotlines), source, imported_at)


_HOTLINE_OPTIONS = {"crm", "dispositions", "handback"}


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_defaults=True) if value is not None else None


def _rows(config: RoutingConfig) -> list[Any]:
    rows: list[Any] = [RoutingCalendarRow(name=n, definition=c.model_dump(mode="json"))
                       for n, c in config.calendars.items()]
    rows += [RoutingAgentRow(id=aid, name=a.name, languages=list(a.languages),
                             skills=dict(a.skills), max_calls=a.max_calls,
                             devices=[d.model_dump(mode="json", exclude_none=True)
                                      for d in a.devices], position=i)
             for i, (aid, a) in enumerate(config.agents.items())]
    for i, (gid, g) in enumerate(config.groups.items()):
        options = g.model_dump(mode="json", exclude={*_GROUP_COLUMNS, "members"})
        rows.append(RoutingGroupRow(
            id=gid, name=g.name, strategy=g.strategy, skills=list(g.skills),
            ring_timeout_s=g.ring_timeout_s, max_wait_s=g.max_wait_s, wrap_up_s=g.wrap_up_s,
            priority=g.priority, calendar=g.calendar, overflow=_dump(g.overflow),
            options=options, position=i,
        ))
        rows += [RoutingMemberRow(group_id=gid, agent_id=m.agent, position=j,
                                  member_order=m.order, weight=m.weight)
                 for j, m in enumerate(g.members)]
    for i, h in enumerate(config.hotlines):
        rows.append(RoutingHotlineRow(number=h.number, flow_id=h.flow, calendar=h.calendar,
                                      sticky_window_h=h.sticky_window_h,
                                      default_target=_dump(h.default), position=i,
                                      options=h.model_dump(mode="json", include=_HOTLINE_OPTIONS,
                                                           exclude_defaults=True)))
        rows += [RoutingRuleRow(hotline_number=h.number, position=j, name=r.name,
                                conditions=r.when.model_dump(mode="json", exclude_none=True),
                                target=_dump(r.target), overflow=_dump(r.overflow),
                                priority=r.priority)
                 for j, r in enumerate(h.rules)]
    return rows


def _document(s: Session) -> dict[str, Any]:
    """The stored rows as a routing document (the shape of the YAML file)."""
    meta = {row.key: row.value for row in s.scalars(select(RoutingMetaRow))}
    members: dict[str, list[dict[str, Any]]] = {}
    for m in s.scalars(select(RoutingMemberRow).order_by(RoutingMemberRow.position)):
        member: dict[str, Any] = {"agent": m.agent_id, "weight": m.weight}
        if m.member_order is not None:
            member["order"] = m.member_order
        members.setdefault(m.group_id, []).append(member)
    groups = {}
    for g in s.scalars(select(RoutingGroupRow).order_by(RoutingGroupRow.position)):
        groups[g.id] = {**g.options, **{c: getattr(g, c) for c in _GROUP_COLUMNS},
                        "members": members.get(g.id, [])}
        if g.overflow is None:
            groups[g.id].pop("overflow")
    rules: dict[str, list[dict[str, Any]]] = {}
    for r in s.scalars(select(RoutingRuleRow).order_by(RoutingRuleRow.position)):
        rule = {"name": r.name, "when": r.conditions, "target": r.target,
                "priority": r.priority}
        if r.overflow is not None:
            rule["overflow"] = r.overflow
        rules.setdefault(r.hotline_number, []).append(rule)
    hotlines = []
    for h in s.scalars(select(RoutingHotlineRow).order_by(RoutingHotlineRow.position)):
        hotline: dict[str, Any] = {
            "number": h.number, "flow": h.flow_id, "calendar": h.calendar,
            "sticky_window_h": h.sticky_window_h, "rules": rules.get(h.number, []),
        }
        if h.default_target is not None:
            hotline["default"] = h.default_target
        hotline.update(h.options or {})
        hotlines.append(hotline)
    return {
        "version": meta.get("version", 1),
        "calendars": {c.name: c.definition for c in s.scalars(select(RoutingCalendarRow))},
        "offers": meta.get("offers", {}),
        "agents": {a.id: {"name": a.name, "languages": a.languages, "skills": a.skills,
                          "max_calls": a.max_calls, "devices": a.devices}
                   for a in s.scalars(select(RoutingAgentRow).order_by(RoutingAgentRow.position))},
        "groups": groups,
        "hotlines": hotlines,
    }


class RoutingStore:
    """The routing configuration of one ``Database``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, config: RoutingConfig, source: str, now: datetime | None = None,
             *, only_if_empty: bool = False) -> Summary | None:
        """Replace the stored configuration with ``config`` (validated first), in one
        transaction. ``only_if_empty``: do nothing (None) when routing is there already;
        concurrent starts of several nodes seed once."""
        problems = check_refs(config)
        if problems:
            path, reason = problems[0]
            raise ValueError(f"routing not saved: {'.'.join(path)}: {reason}")
        imported_at = (now or datetime.now(UTC)).isoformat()
        meta = {"version": config.version, "offers": config.offers.model_dump(mode="json"),
                "source": source, "imported_at": imported_at}
        try:
            with self.db.session(write=True) as s:
                if self.db.backend == "postgresql":
                    s.execute(select(func.pg_advisory_xact_lock(_PG_LOCK)))
                if only_if_empty and s.scalar(select(func.count()).select_from(RoutingMetaRow)):
                    return None
                for table in _TABLES:
                    s.execute(delete(table))
                rows = _rows(config)
                # Parents first: calendars, agents, groups, members, hotlines, rules.
                for kind in reversed(_TABLES[:-1]):
                    s.add_all([r for r in rows if isinstance(r, kind)])
                    s.flush()
                s.add_all([RoutingMetaRow(key=k, value=v) for k, v in meta.items()])
        except SQLAlchemyError as exc:
            raise DatabaseUnavailableError(
                f"routing not saved ({self.db.where}): {' '.join(str(exc).split())[:300]}"
            ) from exc
        return summarize(config, source, imported_at)

    def is_empty(self) -> bool:
        with self.db.session() as s:
            return not s.scalar(select(func.count()).select_from(RoutingHotlineRow)) and \
                not s.scalar(select(func.count()).select_from(RoutingAgentRow))

    def load(self) -> RoutingConfig | None:
        """The stored configuration, None when nothing was imported yet."""
        if self.is_empty():
            return None
        with self.db.session() as s:
            document = _document(s)
        try:
            config = RoutingConfig.model_validate(document)
        except ValueError as exc:
            raise ValueError(f"the routing stored in {self.db.where} is invalid: {exc}") from exc
        problems = check_refs(config)
        if problems:
            path, reason = problems[0]
            raise ValueError(f"the routing stored in {self.db.where} is invalid: "
                             f"{'.'.join(path)}: {reason}")
        return config

    def summary(self) -> Summary | None:
        config = self.load()
        if config is None:
            return None
        with self.db.session() as s:
            meta = {row.key: row.value for row in s.scalars(select(RoutingMetaRow))}
        return summarize(config, meta.get("source"), meta.get("imported_at"))


def ensure_seeded(db: Database, path: Path) -> Summary | None:
    """Import ``path`` when the database has no routing yet (``make run``'s first start).
    Returns what was imported, None when routing was there already. A bad file raises
    ``RoutingFileError`` (file, line, reason) and imports nothing."""
    store = RoutingStore(db)
    if not store.is_empty():
        return None
    summary = store.save(load_file(path), source=str(path), only_if_empty=True)
    if summary is None:
        return None
    get_logger().info("routing_seeded", file=str(path), agents=summary.agents,
                      groups=summary.groups, hotlines=summary.hotlines)
    return summary
