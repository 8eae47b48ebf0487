"""The console pages: ``/console/...`` (server-rendered, zh/en, works offline).

Sign in at ``/console/login`` (the session login of ``/v1/auth``); each page declares what
it needs like any API route, and a browser that is not signed in is sent to the sign-in
page (``app.api.errors``). Reports: ``reports:read``; call search: ``calls:read``, with the
transcript and events only for ``transcripts:read`` and the recording for
``recordings:read`` (each access audited, as the API does).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from app.api.calls import CallId, masked_for
from app.api.console_ui import CONSOLE_DIR, render, svg_bars
from app.auth import CurrentPrincipal, Perm, client_ip, public, require
from app.reports import REPORTS, ReportFilter, run_report
from app.reports.filters import DEFAULT_TZ, zone
from app.reports.search import COUNT_CAP, CallQuery, search_calls

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
static = APIRouter(tags=["console"], include_in_schema=False,
                   dependencies=[public(rate="public")])
STATIC_FILES = {"console.css": "text/css; charset=utf-8",
                "console.js": "text/javascript; charset=utf-8"}
PAGE_SIZE = 50
Text = Annotated[str, Query(max_length=64)]
Day = Annotated[date | None, Query()]


@static.get("/static/console/{name}")
async def console_static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, f"no such file: {name}")
    return FileResponse(CONSOLE_DIR / name, media_type=media_type,
                        headers={"Cache-Control": "no-cache"})


@router.get("/login", dependencies=[public(rate="public")], response_class=HTMLResponse)
async def login_page(request: Request,
                     next: Annotated[str, Query(max_length=256)] = "/console") -> Response:
    """The sign-in form (it posts to ``/v1/auth/login``)."""
    target = next if next.startswith("/console") else "/console"
    return render(request, "login.html", None, next=target)


@router.get("", dependencies=[require()], response_class=HTMLResponse)
async def home(who: CurrentPrincipal) -> Response:
    """The first page the role may open."""
    for perm, page in ((Perm.REPORTS_READ, "reports"), (Perm.MONITOR, "monitor"),
                       (Perm.CALLS_READ, "calls"), (Perm.INTENTS_MANAGE, "inbox")):
        if who.can(perm):
            return RedirectResponse(f"/console/{page}", status_code=303)
    raise HTTPException(403, f"{who.name} has no console page")


def day_range(start: date | None, end: date | None, tz: str, days: int = 7
              ) -> tuple[datetime, datetime]:
    """Whole local days ``start``..``end`` (inclusive) in ``tz``; default: the last ``days``."""
    zone_info = zone(tz)
    today = datetime.now(UTC).astimezone(zone_info).date()
    last = end or today
    first = start or (last - timedelta(days=days - 1))
    return (datetime.combine(first, time(), zone_info),
            datetime.combine(last + timedelta(days=1), time(), zone_info))


def _filter(start: date | None, end: date | None, number: str, locale: str,
            tz: str) -> ReportFilter:
    try:
        begin, stop = day_range(start, end, tz)
        return ReportFilter(start=begin, end=stop, number=number or None,
                            locale=locale or None, tz=tz)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/reports", dependencies=[require(Perm.REPORTS_READ)],
            response_class=HTMLResponse)
async def reports_page(request: Request, who: CurrentPrincipal,
                       report: Text = "outcomes", start: Day = None, end: Day = None,
                       number: Text = "", locale: Text = "", tz: Text = DEFAULT_TZ) -> Response:
    """One report: its figures with their formulas, a chart, the table, CSV links."""
    if report not in REPORTS:
        raise HTTPException(404, f"no report {report!r}")
    f = _filter(start, end, number, locale, tz)
    result = await asyncio.to_thread(run_report, request.app.state.db, report, f)
    query = {"start": f.start.isoformat(), "end": f.end.isoformat(), "tz": tz,
             **({"number": number} if number else {}), **({"locale": locale} if locale else {})}
    return render(request, "reports.html", who, reports=list(REPORTS), report=result,
                  chart=svg_bars(result.chart, result.chart_label), query=query,
                  form={"start": f.start.date().isoformat(),
                        "end": (f.end - timedelta(days=1)).date().isoformat(),
                        "number": number, "locale": locale, "tz": tz},
                  can_export=who.can(Perm.CALLS_READ))


@router.get("/calls", dependencies=[require(Perm.CALLS_READ)], response_class=HTMLResponse)
async def calls_page(request: Request, who: CurrentPrincipal, start: Day = None,
                     end: Day = None, number: Text = "", locale: Text = "",
                     outcome: Text = "", intent: Text = "", caller: Text = "",
                     tz: Text = DEFAULT_TZ,
                     page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    """Call search: the CDRs the filters find, newest first."""
    f = _filter(start, end, number, locale, tz)
    query = CallQuery(filter=f, outcome=outcome or None, intent=intent or None,
                      caller=caller or None)
    rows, total = await asyncio.to_thread(
        lambda: search_calls(request.app.state.db, query, PAGE_SIZE, (page - 1) * PAGE_SIZE))
    settings = request.app.state.settings
    return render(request, "calls.html", who, calls=masked_for(who, settings, rows),
                  total=total, cap=COUNT_CAP, page=page,
                  pages=max(1, -(-min(total or 0, COUNT_CAP) // PAGE_SIZE)),
                  form={"start": f.start.date().isoformat(),
                        "end": (f.end - timedelta(days=1)).date().isoformat(),
                        "number": number, "locale": locale, "outcome": outcome,
                        "intent": intent, "caller": caller, "tz": tz})


@router.get("/calls/{call_id}", dependencies=[require(Perm.CALLS_READ)],
            response_class=HTMLResponse)
async def call_page(request: Request, call_id: CallId, who: CurrentPrincipal) -> Response:
    """One call: its CDR; the transcript and event timeline (``transcripts:read``, audited);
    the recording player (``recordings:read``)."""
    state = request.app.state
    detail = await asyncio.to_thread(state.repo.get_call, call_id)
    if detail is None:
        raise HTTPException(404, f"no call {call_id}")
    body = detail.model_dump(mode="json")
    transcripts = who.can(Perm.TRANSCRIPTS_READ)
    if transcripts:
        await state.auth.audit(who, "transcript.read", f"call:{call_id}",
                               ip=client_ip(request))
    else:
        body.update(turns=[], events=[], flow_path=[], sentiment=[])
        body["cdr"]["flow_state"] = None
    body = masked_for(who, state.settings, body)
    recordings = [{"url": f"/v1/calls/{call_id}/recording?id={r['id']}",
                   "duration_s": r["duration_s"]} for r in body.pop("recordings")]
    return render(request, "call.html", who, call=body, transcripts=transcripts,
                  recordings=recordings if who.can(Perm.RECORDINGS_READ) else None)


def refusal_page(request: Request, status: int, detail: str) -> Response:
    """What a browser sees instead of a JSON refusal on a console page."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/console/login?next={_quote(target)}", status_code=303)
    return render(request, "refused.html", None, status=status, detail=detail)


def _quote(value: str) -> str:
    return quote(value, safe="/")

