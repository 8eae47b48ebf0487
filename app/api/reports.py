"""Reports over the call records: ``/v1/reports/...`` (JSON and CSV).

Who: ``reports:read`` (analyst, supervisor, admin). The CDR export also needs
``calls:read``; phone numbers in it are masked for roles outside ``pii_clear_roles``.
Every report answers its figures with the formula each one uses (``app.reports``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from app.auth import CurrentPrincipal, Perm, Principal, require
from app.pii import PII_KINDS, mask_json
from app.reports import REPORTS, Report, ReportFilter, run_report
from app.reports.filters import DEFAULT_TZ
from app.reports.search import CDR_COLUMNS, CallQuery, csv_lines, export_cdrs

router = APIRouter(prefix="/v1/reports", tags=["reports"])
DEFAULT_DAYS = 7
Moment = Annotated[AwareDatetime | None, Query(
    description="ISO 8601 with a time zone; default: the last 7 whole days")]
Short = Annotated[str | None, Query(max_length=64)]
ReportName = Annotated[str, Path(max_length=64, description="a report's name")]


@dataclass(frozen=True)
class Params:
    start: datetime | None
    end: datetime | None
    number: str | None
    locale: str | None
    tz: str


def report_filter(p: Params, now: datetime | None = None) -> ReportFilter:
    """The filter the query asks for; ``HTTPException`` 422 naming the field when bad."""
    try:
        default = ReportFilter.last_days(DEFAULT_DAYS, now or datetime.now(UTC), tz=p.tz)
        return ReportFilter(start=p.start or default.start, end=p.end or default.end,
                            number=p.number or None, locale=p.locale or None, tz=p.tz)
    except ValueError as exc:
        raise HTTPException(422, [{"loc": ["query"], "msg": str(exc),
                                   "type": "value_error"}]) from None


Thresholds = Annotated[float, Query(ge=0, le=3600, description="seconds")]
Confidence = Annotated[float, Query(ge=0, le=1, description="below it: low confidence")]


@router.get("", dependencies=[require(Perm.REPORTS_READ)])
async def list_reports() -> list[str]:
    """The reports there are."""
    return list(REPORTS)


@router.get("/export/calls.csv", dependencies=[require(Perm.REPORTS_READ, Perm.CALLS_READ)],
            response_class=StreamingResponse)
async def export_calls(request: Request, who: CurrentPrincipal,
                       start: Moment = None, end: Moment = None, number: Short = None,
                       locale: Short = None, outcome: Short = None,
                       tz: Annotated[str, Query(max_length=64)] = DEFAULT_TZ,
                       ) -> StreamingResponse:
    """Every CDR of the range as CSV, streamed (phone numbers masked unless the role may
    see them); the export is audited."""
    f = report_filter(Params(start, end, number, locale, tz))
    query = CallQuery(filter=f, outcome=outcome or None)
    state = request.app.state
    await state.auth.audit(who, "calls.export", "calls", after=f.describe())
    rows = _masked_rows(export_cdrs(state.db, query), who, state.settings)
    return StreamingResponse(_threaded(csv_lines(CDR_COLUMNS, rows)),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="calls.csv"'})


def _masked_rows(rows: Iterator[dict[str, Any]], who: Principal,
                 settings: Any) -> Iterator[list[Any]]:
    clear = who.sees_clear_pii(settings)
    for row in rows:
        shown = row if clear else mask_json(row, PII_KINDS)
        yield [shown[c] for c in CDR_COLUMNS]


async def _threaded(lines: Iterator[str]) -> Any:
    """The blocking iterator's lines, each read in a worker thread (the loop never waits on
    the database)."""
    done = object()
    while True:
        line = await asyncio.to_thread(next, lines, done)
        if line is done:
            return
        yield line


@router.get("/{name}", dependencies=[require(Perm.REPORTS_READ)])
async def get_report(request: Request, name: ReportName,
                     sla_s: Thresholds = 20.0, short_abandon_s: Thresholds = 5.0,
                     low_confidence: Confidence = 0.6,
                     start: Moment = None, end: Moment = None, number: Short = None,
                     locale: Short = None,
                     tz: Annotated[str, Query(max_length=64)] = DEFAULT_TZ,
                     ) -> dict[str, Any]:
    """A report: its figures (value, formula), its table, the filter it used."""
    report = await _run(request, name, Params(start, end, number, locale, tz), sla_s,
                        short_abandon_s, low_confidence)
    body: dict[str, Any] = report.as_json()
    return body


@router.get("/{name}/csv", dependencies=[require(Perm.REPORTS_READ)],
            response_class=StreamingResponse)
async def get_report_csv(request: Request, name: ReportName,
                         sla_s: Thresholds = 20.0, short_abandon_s: Thresholds = 5.0,
                         low_confidence: Confidence = 0.6,
                         start: Moment = None, end: Moment = None, number: Short = None,
                         locale: Short = None,
                         tz: Annotated[str, Query(max_length=64)] = DEFAULT_TZ,
                         ) -> StreamingResponse:
    """A report's table as CSV."""
    report = await _run(request, name, Params(start, end, number, locale, tz), sla_s,
                        short_abandon_s, low_confidence)
    return StreamingResponse(csv_lines(report.columns, iter(report.rows)),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition":
                                      f'attachment; filename="{report.name}.csv"'})


async def _run(request: Request, name: str, p: Params, sla_s: float,
               short_abandon_s: float, low_confidence: float) -> Report:
    if name not in REPORTS:
        raise HTTPException(404, f"no report {name!r}: there are {', '.join(REPORTS)}")
    f = report_filter(p)
    return await asyncio.to_thread(
        lambda: run_report(request.app.state.db, name, f, sla_s=sla_s,
                           short_abandon_s=short_abandon_s, low_confidence=low_confidence))
