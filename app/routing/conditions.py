"""Rule conditions, compiled once per configuration into checks that explain themselves.

A check returns ``None`` when its condition holds, else why not ("province is 上海, rule wants
北京"). Time conditions use the hotline calendar's time zone (Asia/Shanghai without one) and
PRC holiday data from ``chinese_calendar``: a day is a ``holiday`` (statutory), a ``makeup``
day (调休: a weekend day worked instead), a ``weekend`` or a ``workday``; for years without
holiday data it is weekend or workday by the weekday.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

from app.flows.admin_calendar import admin_calendar, admin_version
from app.flows.calendar import WEEKDAYS, BusinessCalendar, CalendarStatus, parse_range
from app.routing.config import DayKind, When
from app.routing.plan import RouteRequest
from app.routing.region import CallerRegion

DEFAULT_TZ = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a rule may look at, computed once per decision."""

    request: RouteRequest
    region: CallerRegion
    local: datetime
    day: DayKind
    calendar: CalendarStatus | None


Check = Callable[[Facts], str | None]


class CachedCalendar:
    """A flows ``BusinessCalendar`` whose answers are kept per local minute (its hours have
    minute resolution; the PRC holiday lookup costs ~0.1 ms, too much per decision)."""

    def __init__(self, calendar: BusinessCalendar, max_entries: int = 20_000) -> None:
        self.calendar = calendar
        self.timezone = calendar.timezone
        self._tz = ZoneInfo(calendar.timezone)
        self._minutes: dict[datetime, CalendarStatus] = {}
        self._max = max_entries
        self._admin: tuple[int, int, int] | None = admin_version()

    def status(self, at: datetime) -> CalendarStatus:
        minute = at.astimezone(self._tz).replace(second=0, microsecond=0)
        admin = admin_version()  # the admin calendar changed: forget every answer
        if admin != self._admin:
            self._minutes.clear()
            self._admin = admin
        found = self._minutes.get(minute)
        if found is None:
            if len(self._minutes) >= self._max:
                self._minutes.clear()
            found = self._minutes[minute] = self.calendar.status(minute)
        return found


def day_kind(day: date) -> DayKind:
    """The admin calendar's entry for ``day`` first, then the PRC library."""
    entries = admin_calendar()
    entry = entries.on(day) if entries is not None else None
    if entry is not None and entry.kind != "hours":
        return "makeup" if entry.kind == "makeup" else "holiday"
    return library_day_kind(day)


@lru_cache(maxsize=4096)
def library_day_kind(day: date) -> DayKind:
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return "weekend" if day.weekday() >= 5 else "workday"
    if name is not None:
        return "holiday" if is_holiday else "makeup"
    return "weekend" if day.weekday() >= 5 else "workday"


def facts(request: RouteRequest, region: CallerRegion, now: datetime,
          calendar: CachedCalendar | None) -> Facts:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"routing needs an aware time, got {now.isoformat()}")
    tz = calendar.timezone if calendar is not None else DEFAULT_TZ
    local = now.astimezone(ZoneInfo(tz))
    status = calendar.status(now) if calendar is not None else None
    return Facts(request, region, local, day_kind(local.date()), status)


def _one_of(what: str, have: Any, wanted: list[Any]) -> str | None:
    if have in wanted:
        return None
    shown = "none" if have is None or have == "" else have
    return f"{what} is {shown}, rule wants {' or '.join(str(w) for w in wanted)}"


def _in_ranges(ranges: list[tuple[time, time | None]], now: time) -> bool:
    return any(start <= now and (end is None or now < end) for start, end in ranges)


def _region_checks(when: When) -> list[Check]:
    checks: list[Check] = []
    if when.province is not None:
        wanted = when.province

        def province(f: Facts) -> str | None:
            if f.region.in_province(wanted):
                return None
            have = f.region.province or f"unknown ({f.region.label()})"
            return f"province is {have}, rule wants {' or '.join(wanted)}"
        checks.append(province)
    if when.city is not None:
        cities = when.city

        def city(f: Facts) -> str | None:
            if f.region.in_city(cities):
                return None
            have = "/".join(f.region.cities) or f"unknown ({f.region.label()})"
            return f"city is {have}, rule wants {' or '.join(cities)}"
        checks.append(city)
    if when.caller_prefix is not None:
        prefixes = tuple(when.caller_prefix)
        checks.append(lambda f: None if f.region.number.startswith(prefixes) else
                      f"caller {f.region.number or 'withheld'} does not start with "
                      f"{' or '.join(prefixes)}")
    if when.number_type is not None:
        kind = when.number_type
        checks.append(lambda f: _one_of("number type", f.region.number_type, [kind]))
    return checks


def _time_checks(when: When) -> list[Check]:
    checks: list[Check] = []
    if when.calendar is not None:
        want = when.calendar
        checks.append(lambda f: _one_of("calendar", f.calendar, [want]))
    if when.day is not None:
        days = list(when.day)
        checks.append(lambda f: _one_of(f"day {f.local.date()}", f.day, days))
    if when.weekdays is not None:
        weekdays = list(when.weekdays)
        checks.append(lambda f: _one_of("weekday", WEEKDAYS[f.local.weekday()], weekdays))
    if when.dates is not None:
        dates = list(when.dates)
        checks.append(lambda f: None if f.local.date() in dates else
                      f"date {f.local.date()} is not one of the rule's dates")
    if when.hours is not None:
        ranges = [parse_range(r) for r in when.hours]
        text = ", ".join(when.hours)
        checks.append(lambda f: None if _in_ranges(ranges, f.local.time().replace(tzinfo=None))
                      else f"time {f.local:%H:%M} is outside {text}")
    return checks


def _crm_check(field: str, wanted: list[Any]) -> Check:
    def check(f: Facts) -> str | None:
        have = f.request.crm.get(field)
        if have in wanted and (type(have) is bool) == all(type(w) is bool for w in wanted):
            return None
        if isinstance(have, str | int | float) and str(have) in {str(w) for w in wanted}:
            return None
        shown = "missing" if have is None else json.dumps(have, ensure_ascii=False)
        return f"crm.{field} is {shown}, rule wants " \
               f"{' or '.join(json.dumps(w, ensure_ascii=False) for w in wanted)}"
    return check


def _slot_check(slot: str, wanted: list[str]) -> Check:
    def check(f: Facts) -> str | None:
        have = f.request.slots.get(slot)
        if have and ("*" in wanted or have in wanted):
            return None
        return f"slot {slot} is {have or 'empty'}, rule wants {' or '.join(wanted)}"
    return check


def _bot_checks(when: When) -> list[Check]:
    checks: list[Check] = []
    if when.intent is not None:
        intents = list(when.intent)
        checks.append(lambda f: _one_of("intent", f.request.intent, intents))
    for slot, values in (when.slots or {}).items():
        checks.append(_slot_check(slot, values))
    if when.locale is not None:
        locales = list(when.locale)
        checks.append(lambda f: _one_of("locale", f.request.locale, locales))
    if when.sentiment is not None:
        labels = list(when.sentiment)
        checks.append(lambda f: _one_of("sentiment", f.request.sentiment, labels))
    if when.sentiment_below is not None:
        limit = when.sentiment_below
        checks.append(lambda f: None if f.request.sentiment_score is not None
                      and f.request.sentiment_score < limit else
                      f"sentiment score is {f.request.sentiment_score}, rule wants < {limit}")
    for field, crm_values in (when.crm or {}).items():
        checks.append(_crm_check(field, list(crm_values)))
    if when.queue is not None:
        queues = list(when.queue)
        checks.append(lambda f: _one_of("flow queue", f.request.queue, queues))
    if when.skill is not None:
        skills = set(when.skill)
        checks.append(lambda f: None if skills & set(f.request.skills) else
                      f"flow skills are {', '.join(f.request.skills) or 'none'}, rule wants "
                      f"{' or '.join(sorted(skills))}")
    return checks


def compile_when(when: When) -> tuple[Check, ...]:
    """The checks of a rule, cheapest first (bot facts, region, then time)."""
    return (*_bot_checks(when), *_region_checks(when), *_time_checks(when))


def first_failure(checks: tuple[Check, ...], f: Facts) -> str | None:
    for check in checks:
        reason = check(f)
        if reason is not None:
            return reason
    return None
