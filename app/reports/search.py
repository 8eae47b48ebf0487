"""Call search (the console's list of calls) and the streamed CSV export of CDRs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select

from app.reports.filters import ReportFilter
from app.storage.db import Database
from app.storage.models import CallRow

MAX_PAGE = 200
COUNT_CAP = 10_000  # a search counts its matches up to this many ("10000+")
EXPORT_BATCH = 1000
CDR_COLUMNS = ("id", "hotline_number", "caller_number", "channel", "locale", "started_at",
               "answered_at", "ended_at", "duration_s", "outcome", "final_intent",
               "handoff_target", "flow_id", "caller_region", "end_reason")


@dataclass(frozen=True)
class CallQuery:
    """The report filter plus what a person searching for one call knows."""

    filter: ReportFilter
    outcome: str | None = None
    intent: str | None = None
    caller: str | None = None  # the caller's number as stored (exact)
    handed_off: bool | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found = self.filter.conditions()
        if self.outcome:
            found.append(CallRow.outcome == self.outcome)
        if self.intent:
            found.append(CallRow.final_intent == self.intent)
        if self.caller:
            found.append(CallRow.caller_number == self.caller)
        if self.handed_off is not None:
            found.append(CallRow.handoff_target.is_not(None) if self.handed_off
                         else CallRow.handoff_target.is_(None))
        return found


def _row(row: CallRow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in CDR_COLUMNS:
        value = getattr(row, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def search_calls(db: Database, q: CallQuery, limit: int = 50, offset: int = 0,
                 count: bool = True) -> tuple[list[dict[str, Any]], int | None]:
    """One page of CDRs (newest first) and how many match, counted up to ``COUNT_CAP`` + 1
    (more than the cap: ``COUNT_CAP + 1``; None when ``count`` is False), so a search over
    millions of calls answers as fast as its first page."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be in 1..{MAX_PAGE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    conds = q.conditions()
    with db.session() as s:
        rows = s.scalars(select(CallRow).where(*conds)
                         .order_by(CallRow.started_at.desc(), CallRow.id.desc())
                         .limit(limit).offset(offset)).all()
        capped = select(CallRow.id).where(*conds).limit(COUNT_CAP + 1).subquery()
        total = s.scalar(select(func.count()).select_from(capped)) if count else None
        return [_row(r) for r in rows], (int(total or 0) if count else None)


def export_cdrs(db: Database, q: CallQuery) -> Iterator[dict[str, Any]]:
    """Every CDR the query finds, oldest first, read in batches (constant memory)."""
    conds = q.conditions()
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=EXPORT_BATCH).execute(
            select(*(CallRow.__table__.c[name] for name in CDR_COLUMNS))
            .where(*conds).order_by(CallRow.started_at, CallRow.id))
        for values in result:
            yield {name: _plain(v) for name, v in zip(CDR_COLUMNS, values, strict=True)}


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        if getattr(value, "tzinfo", None) is None:  # SQLite hands back naive UTC
            return value.isoformat() + "+00:00"
        return value.isoformat()
    return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A CSV cell: empty for None; text a spreadsheet would run as a formula (what a chat
    visitor typed: "=HYPERLINK(...)") starts with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_lines(columns: list[str] | tuple[str, ...], rows: Iterator[list[Any]]) -> Iterator[str]:
    """CSV text, one line at a time (UTF-8 with a BOM so spreadsheet apps read Chinese)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield "\ufeff" + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([cell(v) for v in row])
        yield buffer.getvalue()
