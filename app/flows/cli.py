"""`hotline flows ...`: check, chat, test, graph."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli_errors import fail
from app.flows.admin_calendar import FILE_NAME as ADMIN_CALENDAR_FILE
from app.flows.admin_calendar import use_admin_calendar
from app.flows.coverage import coverage_warning
from app.flows.loader import check_files, flow_files
from app.flows.schema import Flow
from app.settings import Settings, load_settings
from app.settings_check import did_you_mean

if TYPE_CHECKING:
    from app.flows.engine import FlowEngine, IntentAnswers
    from app.flows.scripts import Script, ScriptResult, Understand

flows_app = typer.Typer(no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
]


def _catalog(settings: Settings, strict: bool = False) -> IntentAnswers | None:
    """The intents catalog (for intent names and FAQ answers), or None when absent.

    A broken intents folder is a warning, or with ``strict`` (``flows check``) an error.
    """
    try:
        from app.nlu.intents import load_intents
    except ImportError:
        return None
    if not settings.intents_dir.is_dir():
        return None
    try:
        catalog = load_intents(settings.intents_dir)
    except ValueError as exc:
        if strict:
            raise fail(f"intents not loaded, so intent names cannot be checked: {exc}") from None
        typer.echo(f"warning: intents not loaded: {exc}", err=True)
        return None
    return catalog if catalog.names() else None


def _understander(settings: Settings) -> Understand | None:
    try:
        from app.nlu.service import NluService
    except ImportError:
        return None
    from app.flows.runtime import CallerInput

    try:
        service = NluService(settings)
        service.ensure_trained(progress=True)
        problem = service.load()
    except (OSError, ValueError, RuntimeError) as exc:
        problem = str(exc)
    if problem is not None:
        typer.echo(f"warning: NLU unavailable ({problem}); phrases and keypad only", err=True)
        return None

    def understand(text: str, locale: str) -> CallerInput:
        u = service.understand(text, locale)
        return CallerInput.speech(text, intent=u.intent, entities=u.entities,
                                  sentiment=u.sentiment)

    return understand


def _flow_paths(settings: Settings) -> list[Path]:
    """The flow files of ``flows_dir``; a missing or empty folder is an error, not "ok: 0"."""
    folder = settings.flows_dir
    if not folder.is_dir():
        raise fail(f"flows folder not found: {folder} (set flows_dir / HOTLINE_FLOWS_DIR)")
    paths = flow_files(folder)
    if not paths:
        raise fail(f"no flow files (*.yaml) in {folder}")
    return paths


def _all_or_exit(paths: list[Path], known: set[str] | None,
                 voices: dict[str, str] | None = None) -> dict[str, Flow]:
    """Every flow, or every problem printed as file:line (exit 2)."""
    flows, errors = check_files(paths, known, voices)
    if errors:
        raise fail("\n".join(str(e) for e in errors))
    return flows


def _load_all(settings: Settings, catalog: IntentAnswers | None) -> dict[str, Flow]:
    return _all_or_exit(_flow_paths(settings), catalog.names() if catalog else None)


def _find_flow(name: str, settings: Settings, catalog: IntentAnswers | None) -> Flow:
    known = catalog.names() if catalog else None
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise fail(f"flow file not found: {path}")
        return next(iter(_all_or_exit([path], known).values()))
    flows = _load_all(settings, catalog)
    if name not in flows:
        raise fail(f"no flow {name!r} in {settings.flows_dir} (have: "
                   f"{', '.join(sorted(flows))}{did_you_mean(name, list(flows))})")
    return flows[name]


@flows_app.command()
def check(
    files: Annotated[list[Path] | None, typer.Argument(help="flow files; default: all")] = None,
    config: ConfigOpt = None,
) -> None:
    """Check flow files: schema, targets, loops, queues, locales, intents, DTMF keys."""
    settings = load_settings(config)
    catalog = _catalog(settings, strict=True)
    if catalog is None:
        typer.echo(f"warning: no intents in {settings.intents_dir}; intent names not checked",
                   err=True)
    missing = [p for p in files or [] if not p.is_file()]
    if missing:
        raise fail("\n".join(f"flow file not found: {p}" for p in missing))
    paths = files or _flow_paths(settings)
    flows, errors = check_files(paths, catalog.names() if catalog else None,
                                voices=settings.tts_voices)
    for err in errors:
        typer.echo(f"{err.file}:{err.line}: {err.reason}")
    if errors:
        typer.echo(f"{len(errors)} error(s) in {len(paths)} file(s)", err=True)
        raise typer.Exit(1)
    use_admin_calendar(settings.data_dir / ADMIN_CALENDAR_FILE)
    holidays = coverage_warning()
    if holidays:
        typer.echo(f"warning: {holidays}", err=True)
    voices = ", ".join(f"{k}={v}" for k, v in settings.tts_voices.items())
    typer.echo(f"ok: {len(flows)} flow(s): {', '.join(sorted(flows))} (every prompt "
               f"speakable with voices {voices})")


@flows_app.command()
def test(
    scripts: Annotated[list[Path] | None, typer.Argument(help="scripts; default: all")] = None,
    nlu: Annotated[bool, typer.Option(help="use the real NLU for turns without an intent")]
    = False,
    channel: Annotated[str, typer.Option(
        help="voice, chat or all: a chat run uses a real chat session and checks its record "
        "(in a throwaway database)")] = "all",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="print transcripts")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run conversation scripts (ivr_flows/tests/*.yaml) as calls and as chats; exit 1 on
    any failure."""
    from app.flows.engine import FlowEngine
    from app.flows.scripts import ScriptResult, load_script, script_files

    if channel not in ("voice", "chat", "all"):
        raise typer.BadParameter(f"--channel must be voice, chat or all, not {channel!r}")
    settings = load_settings(config)
    catalog = _catalog(settings)
    flows = _load_all(settings, catalog)
    engine = FlowEngine(flows, catalog)
    understand = _understander(settings) if nlu else None
    paths = scripts or script_files(settings.flows_dir / "tests")
    loaded: list[tuple[str, Script]] = []
    results: list[ScriptResult] = []
    for path in paths:
        try:
            loaded.append((str(path), load_script(path)))
        except ValueError as exc:
            results.append(ScriptResult(file=str(path), name="", ok=False, failures=[str(exc)]))
    channels = ("voice", "chat") if channel == "all" else (channel,)
    if "chat" in channels:  # the chats' own log lines would drown the results
        from app.log import configure_logging

        configure_logging("WARNING", json_logs=False)
    results += asyncio.run(_run_scripts(loaded, engine, settings, understand, channels))
    failed = sum(not r.ok for r in results)
    skipped = sum(bool(r.skipped) for r in results)
    for r in results:
        mark = "SKIP" if r.skipped else "PASS" if r.ok else "FAIL"
        typer.echo(f"{mark} [{r.channel}] {Path(r.file).name}: {r.name}"
                   + (f" ({r.skipped})" if r.skipped else ""))
        for f in r.failures:
            typer.echo(f"     {f}")
        if verbose or not r.ok:
            for line in r.transcript:
                typer.echo(f"       {line}")
    typer.echo(f"{len(results) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    if failed or not paths:
        raise typer.Exit(1)


async def _run_scripts(scripts: list[tuple[str, Script]], engine: FlowEngine,
                       settings: Settings, understand: Understand | None,
                       channels: tuple[str, ...]) -> list[ScriptResult]:
    from app.flows.scripts import run_script

    results = []
    if "voice" in channels:
        results += [await run_script(s, engine, f, understand) for f, s in scripts]
    if "chat" in channels:
        from app.chat.scripts import run_scripts_as_chat

        results += await run_scripts_as_chat(scripts, engine, settings, understand)
    return results


@flows_app.command()
def chat(
    flow: Annotated[str, typer.Argument(help="flow id or file")],
    locale: Annotated[str | None, typer.Option(help="call locale")] = None,
    caller: Annotated[str, typer.Option(help="caller number")] = "+8613800138000",
    at: Annotated[str | None, typer.Option(help="call time, ISO 8601 with offset")] = None,
    nlu: Annotated[bool, typer.Option(help="use the real NLU classifier")] = True,
    config: ConfigOpt = None,
) -> None:
    """Talk to a flow in the terminal: type speech, `#1` for keys, `.` for silence."""
    from app.flows.chat import run_chat

    settings = load_settings(config)
    catalog = _catalog(settings)
    found = _find_flow(flow, settings, catalog)
    if locale is not None and locale not in found.locales:
        raise fail(f"--locale {locale!r}: flow {found.id!r} speaks {', '.join(found.locales)}"
                   f"{did_you_mean(locale, found.locales)}")
    try:
        when = datetime.fromisoformat(at) if at else None
    except ValueError:
        raise fail(f"--at {at!r}: not an ISO 8601 time (e.g. 2026-11-26T10:00+08:00)") from None
    understand = _understander(settings) if nlu else None
    if understand is None:
        typer.echo("(no NLU: menus match phrases and keys only)")
    run_chat(found, catalog, understand, locale, caller, when)


@flows_app.command()
def graph(
    flow: Annotated[str, typer.Argument(help="flow id or file")],
    output: Annotated[Path, typer.Option("--output", "-o", help=".mmd, .dot, .svg or .png")],
    config: ConfigOpt = None,
) -> None:
    """Draw a flow: Mermaid text, or SVG/PNG through Graphviz."""
    from app.flows.graph import GraphError, write_graph

    settings = load_settings(config)
    found = _find_flow(flow, settings, _catalog(settings))
    try:
        write_graph(found, output)
    except GraphError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {output}")
