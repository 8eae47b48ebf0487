"""The few SQL expressions that differ between SQLite and PostgreSQL: local-time buckets,
seconds between two timestamps, a JSON field as text; and which CDR columns exist."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import ColumnElement, case, func, inspect, literal_column

from app.storage.db import Database
from app.storage.sqlexpr import payload_float, payload_text, seconds_between

__all__ = ["BUCKETS", "cdr_columns", "half_hour_of_day", "local_bucket", "payload_float",
           "payload_text", "seconds_between"]

# strftime formats (SQLite) and their to_char twins (PostgreSQL)
BUCKETS = {"hour": ("%Y-%m-%d %H:00", "YYYY-MM-DD HH24:00"),
           "day": ("%Y-%m-%d", "YYYY-MM-DD"),
           "hour_of_day": ("%H", "HH24")}
_columns_lock = threading.Lock()
_columns: dict[str, frozenset[str]] = {}


def local_bucket(backend: str, column: Any, bucket: str, offset_s: int) -> ColumnElement[str]:
    """``column`` (UTC) shifted by ``offset_s`` and cut to ``bucket`` ("hour", "day",
    "hour_of_day"), as text that sorts."""
    lite, pg = BUCKETS[bucket]
    offset = int(offset_s)
    if backend == "sqlite":
        return func.strftime(lite, column, f"{offset:+d} seconds")
    shifted = func.timezone("UTC", column) + literal_column(f"interval '{offset} seconds'")
    return func.to_char(shifted, pg)


def half_hour_of_day(backend: str, column: Any, offset_s: int) -> ColumnElement[str]:
    """``column`` (UTC) shifted by ``offset_s``, as "HH:00" or "HH:30"."""
    offset = int(offset_s)
    if backend == "sqlite":
        minute = func.strftime("%M", column, f"{offset:+d} seconds")
        return (func.strftime("%H:", column, f"{offset:+d} seconds")
                + case((minute < "30", "00"), else_="30"))
    shifted = func.timezone("UTC", column) + literal_column(f"interval '{offset} seconds'")
    return (func.to_char(shifted, "HH24:")
            + case((func.extract("minute", shifted) < 30, "00"), else_="30"))


def cdr_columns(db: Database) -> frozenset[str]:
    """The columns of ``calls`` in this database (agent and queue columns come with a later
    migration: reports that need them say "n/a" until they exist). Read once per database."""
    key = str(db.url)
    with _columns_lock:
        if key not in _columns:
            with db.engine.connect() as conn:
                names = {c["name"] for c in inspect(conn).get_columns("calls")}
            _columns[key] = frozenset(names)
        return _columns[key]
