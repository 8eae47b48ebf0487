"""`hotline reports rollup`: rebuild the hourly report roll-ups from the call records (after
migrating a database that already had calls, or to repair them)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from app.settings import load_settings

reports_app = typer.Typer(no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
]


@reports_app.callback()
def reports_main() -> None:
    """Reports over the call records."""


@reports_app.command("rollup")
def rollup_command(config: ConfigOpt = None) -> None:
    """Rebuild the hourly roll-ups the reports read (one transaction; the reports read the
    raw records until the first rebuild of a database that had calls before migration 0007)."""
    from app.storage import Database, DatabaseUnavailableError
    from app.storage.rollup import rebuild

    settings = load_settings(config)
    try:
        db = Database.from_settings(settings)
        db.migrate()
        started = time.perf_counter()
        calls = rebuild(db)
    except (ValueError, DatabaseUnavailableError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"rolled up {calls} ended calls in {time.perf_counter() - started:.1f} s "
               f"({db.where})")
    db.dispose()
