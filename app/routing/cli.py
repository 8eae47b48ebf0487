"""`hotline routing ...`: import, export, check, explain, replay."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.routing.config import RoutingConfig
from app.routing.loader import RoutingFileError, check_file, dump_yaml, load_file
from app.settings import Settings, load_settings

routing_app = typer.Typer(no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
]
RulesOpt = Annotated[
    Path | None, typer.Option("--rules", help="routing file to use instead of the database")
]
RosterOpt = Annotated[
    Path | None, typer.Option("--roster", help="who is logged in (default: every agent "
                              "available)")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _intent_names(settings: Settings) -> set[str] | None:
    if not settings.intents_dir.is_dir():
        typer.echo(f"warning: no intents catalog in {settings.intents_dir}; intent names not "
                   "checked", err=True)
        return None
    from app.nlu.intents import load_intents

    try:
        names = load_intents(settings.intents_dir).names()
    except ValueError as exc:
        typer.echo(f"warning: intents not loaded ({exc}); intent names not checked", err=True)
        return None
    return names or None


def _database(settings: Settings) -> Any:
    from app.storage import Database, DatabaseUnavailableError

    try:
        db = Database.from_settings(settings)
        db.migrate()
    except (ValueError, DatabaseUnavailableError) as exc:
        raise _fail(str(exc)) from exc
    return db


def _stored(settings: Settings) -> RoutingConfig:
    from app.routing.store import RoutingStore

    db = _database(settings)
    try:
        config = RoutingStore(db).load()
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    finally:
        db.dispose()
    if config is None:
        raise _fail(f"no routing in the database ({db.where}): run `hotline routing import "
                    "FILE.yaml` (or pass --rules FILE)")
    return config


def _load(path: Path, settings: Settings, check_intents: bool = True) -> RoutingConfig:
    try:
        return load_file(path, _intent_names(settings) if check_intents else None)
    except RoutingFileError as exc:
        raise _fail(str(exc)) from exc


def _flows(settings: Settings) -> dict[str, Any]:
    """The IVR flows that load cleanly (``hotline flows check`` reports the others)."""
    from app.flows.loader import check_files, flow_files

    if not settings.flows_dir.is_dir():
        typer.echo(f"warning: no flows in {settings.flows_dir}; hotline flows not checked",
                   err=True)
        return {}
    flows, _ = check_files(flow_files(settings.flows_dir))
    return dict(flows)


@routing_app.command()
def check(
    files: Annotated[list[Path] | None, typer.Argument(help="routing files; default: the "
                                                       "seed file (settings.routing_file)")]
    = None,
    config: ConfigOpt = None,
) -> None:
    """Check routing files: schema, references, overflow cycles, provinces, intents, flows."""
    settings = load_settings(config)
    known = _intent_names(settings)
    flows = _flows(settings)
    paths = files or [settings.routing_file]
    failed = 0
    for path in paths:
        routing, errors = check_file(path, known, flows)
        messages = [f"{e.file}:{e.line}: {e.reason}" for e in errors]
        for message in messages:
            typer.echo(message)
        failed += len(messages)
        if not messages and routing is not None:
            from app.routing.store import summarize

            typer.echo(f"ok: {path}: {summarize(routing).line()}")
    if failed:
        typer.echo(f"{failed} error(s) in {len(paths)} file(s)", err=True)
        raise typer.Exit(1)


@routing_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="routing file (YAML)")],
    config: ConfigOpt = None,
) -> None:
    """Replace the routing in the database with FILE (all or nothing)."""
    from app.routing.store import RoutingStore

    settings = load_settings(config)
    try:
        routing = load_file(file, _intent_names(settings), _flows(settings))
    except RoutingFileError as exc:
        raise _fail(str(exc)) from exc
    db = _database(settings)
    try:
        summary = RoutingStore(db).save(routing, source=str(file))
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    finally:
        db.dispose()
    assert summary is not None
    typer.echo(f"imported {file} into {db.where}: {summary.line()}")


@routing_app.command()
def export(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file; default stdout")]
    = None,
    config: ConfigOpt = None,
) -> None:
    """Write the routing in the database as YAML (for version control)."""
    text = dump_yaml(_stored(load_settings(config)))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


def _pairs(values: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} must be KEY=VALUE, got {item!r}")
        out[key] = raw
    return out


def _crm_value(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return value if isinstance(value, str | int | float | bool) else raw


def _when(text: str | None, name: str) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be ISO 8601, e.g. 2026-03-02T10:00+08:00, "
                                 f"got {text!r}") from exc
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{name} needs a UTC offset (e.g. +08:00), got {text!r}")
    return parsed


def _routing_for(rules: Path | None, settings: Settings) -> RoutingConfig:
    return _load(rules, settings, False) if rules is not None else _stored(settings)


@routing_app.command()
def explain(
    number: Annotated[str, typer.Option("--number", help="hotline number dialled")],
    caller: Annotated[str, typer.Option("--caller", help="caller's number ('' if withheld)")],
    at: Annotated[str | None, typer.Option("--at", help="time, ISO 8601 with offset")] = None,
    intent: Annotated[str | None, typer.Option("--intent")] = None,
    locale: Annotated[str, typer.Option("--locale")] = "zh",
    queue: Annotated[str | None, typer.Option("--queue", help="the flow's queue")] = None,
    skill: Annotated[list[str] | None, typer.Option("--skill", help="the flow's skills")] = None,
    slot: Annotated[list[str] | None, typer.Option("--slot", help="NAME=VALUE")] = None,
    sentiment: Annotated[str | None, typer.Option(help="negative, neutral or positive")] = None,
    crm: Annotated[list[str] | None, typer.Option("--crm", help="FIELD=VALUE (JSON values: "
                                                  "vip=true)")] = None,
    rules: RulesOpt = None,
    roster: RosterOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="the plan as JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Explain the routing decision for one call: rules, target, candidates, skips."""
    from app.routing.engine import CompiledRouting, route
    from app.routing.explain import render_plan
    from app.routing.plan import RouteRequest
    from app.routing.roster import load_roster, roster_state

    settings = load_settings(config)
    routing = _routing_for(rules, settings)
    now = _when(at, "--at")
    if sentiment not in (None, "negative", "neutral", "positive"):
        raise typer.BadParameter(f"--sentiment must be negative, neutral or positive, got "
                                 f"{sentiment!r}")
    try:
        people = load_roster(roster, routing) if roster else None
        request = RouteRequest(
            call_id="explain", hotline_number=number, caller_number=caller, locale=locale,
            queue=queue, skills=tuple(skill or ()), intent=intent,
            slots={k: str(v) for k, v in _pairs(slot, "--slot").items()},
            sentiment=sentiment,  # type: ignore[arg-type]
            crm={k: _crm_value(v) for k, v in _pairs(crm, "--crm").items()},
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    plan = route(request, roster_state(routing, people, now), CompiledRouting(routing), now)
    if as_json:
        typer.echo(plan.model_dump_json(indent=2))
    else:
        typer.echo(render_plan(plan))


def _day(text: str, name: str) -> datetime:
    try:
        if "T" in text or " " in text.strip():
            return _when(text, name)
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be a date (2026-03-01) or ISO time, got "
                                 f"{text!r}") from exc


@routing_app.command()
def replay(
    start: Annotated[str, typer.Option("--from", help="first day (UTC) or ISO time")],
    end: Annotated[str, typer.Option("--to", help="last day, inclusive (UTC), or ISO time")],
    rules: Annotated[Path | None, typer.Option("--rules", help="proposed routing file")] = None,
    roster: RosterOpt = None,
    handle_s: Annotated[float, typer.Option(help="simulated talk time per call")] = 180.0,
    answer_after_s: Annotated[float, typer.Option(help="simulated ring before answer")] = 3.0,
    show: Annotated[int, typer.Option(help="changed calls to list")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOpt = None,
) -> None:
    """Re-run past handoffs against the database's routing and a proposed one; show what
    would have changed (answer rate, waits, groups)."""
    from app.routing.explain import render_replay, replay_json
    from app.routing.replay import changes, load_handoffs, recorded_stats, run_side

    settings = load_settings(config)
    first = _day(start, "--from")
    last = _day(end, "--to")
    if "T" not in end and " " not in end.strip():
        last = last.replace(hour=23, minute=59, second=59, microsecond=999_999)
    if last < first:
        raise typer.BadParameter("--to is before --from")
    if rules is None and roster is None:
        raise typer.BadParameter("nothing to compare: give --rules FILE and/or --roster FILE")
    if handle_s <= 0 or answer_after_s < 0:
        raise typer.BadParameter("--handle-s must be > 0 and --answer-after-s >= 0")
    baseline_cfg = _stored(settings)
    proposed_cfg = _load(rules, settings, False) if rules is not None else baseline_cfg
    sides = _sides(baseline_cfg, proposed_cfg, roster, rules)
    flows = _flows(settings)
    db = _database(settings)
    try:
        handoffs = load_handoffs(db, first, last, flows or None)
    finally:
        db.dispose()
    results = [run_side(side, handoffs, handle_s, answer_after_s, seed=0) for side in sides]
    diff = changes(results[0], results[1], handoffs)
    recorded = recorded_stats(handoffs)
    if as_json:
        typer.echo(json.dumps(replay_json(recorded, results, diff), ensure_ascii=False,
                              indent=2, default=str))
    else:
        typer.echo(render_replay(first, last, recorded, results, diff, show))


def _sides(baseline: RoutingConfig, proposed: RoutingConfig, roster: Path | None,
           rules: Path | None) -> list[Any]:
    from app.routing.engine import CompiledRouting
    from app.routing.replay import Side
    from app.routing.roster import load_roster
    from app.routing.simulate import AgentSetup

    try:
        people = load_roster(roster, proposed) if roster else None
    except RoutingFileError as exc:
        raise _fail(str(exc)) from exc
    proposed_agents = (AgentSetup(people.available(proposed), people.away()) if people
                       else AgentSetup(tuple(proposed.agents)))
    name = str(rules) if rules else f"database + {roster}"
    return [Side("database", CompiledRouting(baseline), AgentSetup(tuple(baseline.agents))),
            Side(name, CompiledRouting(proposed), proposed_agents)]
