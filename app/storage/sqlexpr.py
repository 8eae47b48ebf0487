"""SQL expressions that differ between SQLite and PostgreSQL, shared by the reports and the
roll-ups: seconds between two timestamps, an event payload's field, the UTC hour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, cast, func
from sqlalchemy.sql.elements import ColumnElement as Col

from app.storage.models import CallEventRow


def seconds_between(backend: str, start: Any, end: Any) -> Col[float]:
    """``end - start`` in seconds (a float; NULL when either is NULL)."""
    if backend == "sqlite":
        return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)
    return cast(func.extract("epoch", end - start), Float)


def payload_text(key: str) -> ColumnElement[str]:
    """An event payload's field as text (NULL when absent)."""
    column: ColumnElement[str] = CallEventRow.payload[key].as_string()
    return column


def payload_float(key: str) -> ColumnElement[float]:
    column: ColumnElement[float] = CallEventRow.payload[key].as_float()
    return column


def utc_hour(backend: str, column: Any) -> ColumnElement[Any]:
    """``column`` cut to its UTC hour (text on SQLite, a naive UTC timestamp on PostgreSQL:
    read it with ``hour_value``)."""
    if backend == "sqlite":
        return func.strftime("%Y-%m-%d %H:00:00", column)
    return func.date_trunc("hour", func.timezone("UTC", column))


def hour_value(raw: Any) -> datetime:
    """A ``utc_hour`` result as an aware UTC datetime."""
    value = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    if not isinstance(value, datetime):
        raise ValueError(f"not an hour: {raw!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
