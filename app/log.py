"""Structured logs (structlog): ``call_id`` bound in every call's lines.

On a terminal the lines are human-readable and coloured; otherwise (a pipe, a file, a
container log) or when asked (``log_json``) they are JSON lines.

Every line passes ``app.pii.mask_log_event``: personal numbers and the values sensitive flow
nodes collected never reach the logs in clear.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from app.pii import mask_log_event


class _Stderr:
    """Whatever ``sys.stderr`` is at write time (test runners swap it out and close theirs)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def want_json(json_logs: bool | None) -> bool:
    """``log_json`` as set, or (unset) JSON unless stderr is a terminal."""
    if json_logs is not None:
        return json_logs
    isatty = getattr(sys.stderr, "isatty", None)
    return not (isatty is not None and isatty())


def configure_logging(level: str = "INFO", json_logs: bool | None = True) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        mask_log_event,  # card/ID/bank/phone numbers and live calls' secrets: masked
    ]
    as_json = want_json(json_logs)
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=json_logs is None and _colour_ok())
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def _colour_ok() -> bool:
    import os

    isatty = getattr(sys.stderr, "isatty", None)
    return isatty is not None and isatty() and "NO_COLOR" not in os.environ


def get_logger(**bound: Any) -> Any:
    """A logger with ``bound`` key/values in every line (``get_logger(call_id=...)``)."""
    return structlog.get_logger("hotline").bind(**bound)
