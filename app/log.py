"""Structured logs (structlog): JSON lines by default, ``call_id`` bound in every call's lines.

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


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        mask_log_event,  # card/ID/bank/phone numbers and live calls' secrets: masked
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    """A logger with ``bound`` key/values in every line (``get_logger(call_id=...)``)."""
    return structlog.get_logger("hotline").bind(**bound)
