"""The admin calendar from the console (``app.flows.admin_calendar``): ``/console/calendar``
(entries, holiday-data coverage for the next 60 days, "what happens on date X"),
``GET /v1/config/calendar`` (entries and coverage), ``POST /v1/config/calendar/entries`` (add
one: 422 with field and reason for a bad date, a duplicate, a make-up day on a weekday),
``DELETE /v1/config/calendar/entries/{day}`` and ``GET /v1/config/calendar/preview``.

Who: ``config:write`` (admin). Each change rewrites ``<data_dir>/calendar.yaml`` atomically and
is audited with the entries before and after; every node reading that data_dir sees it at its
next calendar question (an mtime check).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from app.api.console_ui import render
from app.auth import CurrentPrincipal, Perm, client_ip, require
from app.flows.admin_calendar import (
    FILE_NAME,
    FIRST_YEAR,
    LAST_YEAR,
    AdminCalendar,
    AdminCalendarFile,
    AdminEntry,
    EntryKind,
    admin_calendar_file,
    entry_problem,
)
from app.flows.calendar import BusinessCalendar
from app.flows.coverage import CHINA, LOOKAHEAD_DAYS, coverage_warning, covered_until
from app.settings import Settings

router = APIRouter(tags=["config"])
_lock = asyncio.Lock()  # one change at a time in this process (read, modify, rename)


class EntryIn(BaseModel):
    date: date
    kind: EntryKind
    name: str = Field(default="", max_length=80)
    hours: list[str] = Field(default_factory=list, max_length=8)


def _file(request: Request) -> AdminCalendarFile:
    """The process's admin calendar file (``create_app`` installs it; else this app's)."""
    settings: Settings = request.app.state.settings
    found = admin_calendar_file()
    path = settings.data_dir / FILE_NAME
    if found is None or found.path != path:
        found = AdminCalendarFile(path)
    return found


def _refuse(field: str, reason: str, status: int = 422) -> HTTPException:
    return HTTPException(status, [{"loc": ["body", field], "type": "value_error",
                                   "msg": reason}])


def _entries(calendar: AdminCalendar) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude_defaults=True) for e in calendar.entries]


def _today() -> date:
    return datetime.now(UTC).astimezone(CHINA).date()


def coverage(calendar: AdminCalendar, today: date) -> dict[str, Any]:
    years = calendar.covered_years()
    return {"today": today.isoformat(), "days": LOOKAHEAD_DAYS,
            "until": covered_until(years).isoformat(), "admin_years": sorted(years),
            "warning": coverage_warning(today, admin_years=years)}


def _flows(request: Request) -> dict[str, Any]:
    return getattr(request.app.state, "flows", None) or {}


def preview(flows: dict[str, Any], day: date) -> list[dict[str, Any]]:
    """How each flow's calendar treats ``day`` (flows without a calendar are always open)."""
    out = []
    for flow_id, flow in sorted(flows.items()):
        cal: BusinessCalendar | None = getattr(flow, "calendar", None)
        if cal is None:
            continue
        rule = cal.day_rule(day)
        out.append({"flow": flow_id, "date": day.isoformat(),
                    "status": "holiday" if rule.holiday else
                    ("open" if rule.ranges else "closed"),
                    "hours": rule.ranges, "source": rule.source, "why": rule.why})
    return out


@router.get("/v1/config/calendar", dependencies=[require(Perm.CONFIG_WRITE)])
async def get_calendar(request: Request, today: Annotated[date | None, Query()] = None
                       ) -> dict[str, Any]:
    """The entries, and whether holiday data covers ``today`` (default: today in China)
    and the 60 days after it."""
    if today is not None and not FIRST_YEAR <= today.year <= LAST_YEAR:
        raise HTTPException(422, [{"loc": ["query", "today"], "type": "value_error",
                                   "msg": f"today is in {FIRST_YEAR}..{LAST_YEAR}"}])
    file = _file(request)
    calendar = await asyncio.to_thread(file.get)
    return {"entries": _entries(calendar), "problem": file.problem,
            "coverage": coverage(calendar, today or _today())}


@router.post("/v1/config/calendar/entries", dependencies=[require(Perm.CONFIG_WRITE)],
             status_code=201)
async def add_entry(body: EntryIn, request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    """Add one dated entry (one per date)."""
    entry = AdminEntry.model_construct(**body.model_dump())
    problem = entry_problem(entry)
    if problem is not None:
        raise _refuse(*problem)
    file = _file(request)
    async with _lock:
        before = await asyncio.to_thread(file.get)
        if file.problem:
            raise _refuse("date", f"the calendar file is broken, fix it first: {file.problem}",
                          409)
        if before.on(entry.date) is not None:
            raise _refuse("date", f"{entry.date.isoformat()} already has an entry "
                                  "(remove it first)")
        after = AdminCalendar(entries=[*before.entries, entry])
        await asyncio.to_thread(file.save, after)
    await request.app.state.auth.audit(who, "calendar.add", f"calendar:{entry.date}",
                                       before={"entries": _entries(before)},
                                       after={"entries": _entries(after)},
                                       ip=client_ip(request))
    return entry.model_dump(mode="json", exclude_defaults=True)


@router.delete("/v1/config/calendar/entries/{day}", dependencies=[require(Perm.CONFIG_WRITE)])
async def remove_entry(day: date, request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    file = _file(request)
    async with _lock:
        before = await asyncio.to_thread(file.get)
        gone = before.on(day)
        if gone is None:
            raise HTTPException(404, f"no calendar entry on {day.isoformat()}")
        after = AdminCalendar(entries=[e for e in before.entries if e.date != day])
        await asyncio.to_thread(file.save, after)
    await request.app.state.auth.audit(who, "calendar.remove", f"calendar:{day}",
                                       before={"entries": _entries(before)},
                                       after={"entries": _entries(after)},
                                       ip=client_ip(request))
    return {"removed": gone.model_dump(mode="json", exclude_defaults=True)}


@router.get("/v1/config/calendar/preview", dependencies=[require(Perm.CONFIG_WRITE)])
async def calendar_preview(request: Request, day: Annotated[date, Query(alias="date")]
                           ) -> dict[str, Any]:
    """What happens on ``date`` for each flow calendar: open/closed/holiday, its hours, and
    why (admin entry, the flow's closed dates, chinesecalendar, or weekly hours)."""
    rows = await asyncio.to_thread(preview, _flows(request), day)
    return {"date": day.isoformat(), "calendars": rows}


@router.get("/console/calendar", dependencies=[require(Perm.CONFIG_WRITE)],
            response_class=HTMLResponse, include_in_schema=False)
async def calendar_page(request: Request, who: CurrentPrincipal,
                        day: Annotated[str, Query(max_length=16)] = "") -> Response:
    file = _file(request)
    calendar = await asyncio.to_thread(file.get)
    problem, shown = None, None
    try:
        shown = date.fromisoformat(day) if day else _today() + timedelta(days=1)
    except ValueError:
        problem = f"date must look like 2027-01-01, got {day!r}"
    rows = await asyncio.to_thread(preview, _flows(request), shown) if shown else []
    return render(request, "calendar.html", who, entries=_entries(calendar),
                  file_problem=file.problem, coverage=coverage(calendar, _today()),
                  preview=rows, day=shown.isoformat() if shown else day, problem=problem)
