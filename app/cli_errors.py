"""One clean error path for every ``hotline`` command.

The root command group catches the errors that mean "your input or your environment is
wrong" (a setting, a flow file, an intents file, a database that does not answer) and prints
them as ``error: ...`` lines on stderr, unwrapped (a pipe gets whole words), with exit code 2
for bad input and 1 for an environment problem. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer import _click
from typer.core import TyperGroup

BAD_INPUT_EXIT = 2
ENVIRONMENT_EXIT = 1


def fail(message: str, code: int = BAD_INPUT_EXIT) -> typer.Exit:
    """Print ``error: message`` (each line whole) and return the Exit to raise."""
    for line in message.splitlines() or [""]:
        print(f"error: {line}" if line else "error:", file=sys.stderr)
    return typer.Exit(code)


def _classify(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit code) for an error a user can fix, None for a bug."""
    from app.flows.loader import FlowError
    from app.nlu.intents import IntentFileError
    from app.settings_check import SettingsError
    from app.storage.errors import DatabaseUnavailableError

    if isinstance(exc, SettingsError | FlowError | IntentFileError):
        return str(exc), BAD_INPUT_EXIT
    if isinstance(exc, DatabaseUnavailableError):
        return f"{exc} (check HOTLINE_DATABASE_URL / database_url)", ENVIRONMENT_EXIT
    return None


class HotlineGroup(TyperGroup):
    """The root group: user errors from any sub-command become short messages."""

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, _click.ClickException):
            raise
        except Exception as exc:
            found = _classify(exc)
            if found is None:
                raise
            raise fail(*found) from None
