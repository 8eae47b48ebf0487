"""Is the PRC holiday data (``chinese_calendar``) there for the days ahead?

The library ships statutory holidays and make-up working days (调休) year by year; for a
year it has no data for, business calendars silently fall back to weekly hours
(``app.flows.calendar``). ``coverage_warning`` says so when the next ``days`` days reach
past the data, for ``/readyz``, ``hotline flows check`` and the console. A year the admin
calendar has holidays for (``app.flows.admin_calendar``) counts as covered.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from zoneinfo import ZoneInfo

import chinese_calendar

from app.flows.admin_calendar import admin_calendar

LOOKAHEAD_DAYS = 60
CHINA = ZoneInfo("Asia/Shanghai")


def holiday_data_until() -> date:
    """The last day ``chinese_calendar`` has data for (the 31st of December of its last
    year)."""
    last_year = max(d.year for d in (*chinese_calendar.holidays, *chinese_calendar.workdays))
    return date(last_year, 12, 31)


def _library() -> str:
    try:
        return f"chinesecalendar {version('chinesecalendar')}"
    except PackageNotFoundError:
        return "chinesecalendar"


def covered_until(admin_years: set[int] | None = None) -> date:
    """The last day with holiday data: the library's, extended by each following year the
    admin calendar covers (default: the process's admin calendar)."""
    if admin_years is None:
        entries = admin_calendar()
        admin_years = entries.covered_years() if entries is not None else set()
    until = holiday_data_until()
    while until.year + 1 in admin_years:
        until = date(until.year + 1, 12, 31)
    return until


def coverage_warning(today: date | None = None, days: int = LOOKAHEAD_DAYS,
                     admin_years: set[int] | None = None) -> str | None:
    """None when the holiday data (library, then admin) covers ``today`` and the ``days``
    days after it (default: today in China); else what is missing and what to do."""
    start = today or datetime.now(UTC).astimezone(CHINA).date()
    until = covered_until(admin_years)
    if start + timedelta(days=days) <= until:
        return None
    first = until + timedelta(days=1)
    source = _library() if until == holiday_data_until() else \
        f"{_library()} and the admin calendar"
    return (f"PRC holiday data ({source}) ends on {until.isoformat()}: from "
            f"{first.isoformat()} holidays and make-up working days (调休) are unknown and "
            f"holiday routing falls back to weekly hours; the next {days} days are not "
            "covered (upgrade chinesecalendar, or enter that year's holidays and make-up "
            "days on the console's calendar page, /console/calendar)")
