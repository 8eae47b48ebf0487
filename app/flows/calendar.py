"""Business calendars: weekly hours in an IANA time zone, PRC holidays and 调休, closed dates.

``status(at)`` answers ``open`` / ``closed`` / ``holiday`` for an aware instant:

1. a custom closed date, or a PRC statutory holiday (``chinese_calendar``) -> ``holiday``;
2. a PRC make-up workday (调休, a Saturday or Sunday worked instead) uses ``makeup_hours``
   (default: Monday's hours);
3. otherwise the weekly hours of that weekday, in the calendar's time zone.

Years ``chinese_calendar`` has no data for fall back to weekly hours (``holiday_data(d)``
says whether the answer knew about holidays).

Before all of these, the admin calendar (``app.flows.admin_calendar``, entered on
``/console/calendar``) decides a date it has an entry for: holiday and closed -> ``holiday``,
make-up day -> the make-up hours, hours -> that day's hours. ``day_rule(day)`` says which
rule applied and why (the console's "what happens on date X" preview).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.flows.admin_calendar import admin_calendar

CalendarStatus = Literal["open", "closed", "holiday"]
RuleSource = Literal["admin", "library", "closed_dates", "weekly"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_range(text: str) -> tuple[time, time | None]:
    """``"09:00-21:00"`` -> (09:00, 21:00); ``24:00`` as the end is ``None`` (midnight)."""
    m = _RANGE.match(text.strip())
    if not m:
        raise ValueError(f"hours must look like 09:00-18:00, got {text!r}")
    start = time(int(m.group(1)), int(m.group(2)))
    if m.group(3) == "24":
        if m.group(4) != "00":
            raise ValueError(f"hours end after 24:00: {text!r}")
        return start, None
    end = time(int(m.group(3)), int(m.group(4)))
    if end <= start:
        raise ValueError(f"hours end before they start: {text!r}")
    return start, end


class BusinessCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Shanghai"
    hours: dict[Weekday, list[str]] = Field(default_factory=dict)
    makeup_hours: list[str] | None = Field(
        default=None, description="hours on a 调休 make-up workday; default Monday's"
    )
    prc_holidays: bool = True
    closed_dates: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {v!r}") from exc
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        for ranges in v.values():
            for r in ranges:
                parse_range(r)
        return v

    @field_validator("makeup_hours")
    @classmethod
    def _makeup(cls, v: list[str] | None) -> list[str] | None:
        for r in v or []:
            parse_range(r)
        return v

    def local(self, at: datetime) -> datetime:
        if at.tzinfo is None:
            raise ValueError("calendar needs an aware datetime (with a time zone)")
        return at.astimezone(ZoneInfo(self.timezone))

    def holiday_data(self, day: date) -> bool:
        """Whether PRC holiday data covers ``day``."""
        try:
            chinese_calendar.is_holiday(day)
        except NotImplementedError:
            return False
        return True

    def _prc(self, day: date) -> tuple[bool, bool]:
        """(statutory holiday, make-up workday) for ``day``."""
        if not self.prc_holidays or not self.holiday_data(day):
            return False, False
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        if name is None:
            return False, False
        return bool(is_holiday), not is_holiday

    def day_rule(self, day: date) -> DayRule:
        """What decides ``day``: an admin entry, the flow's closed dates, the PRC library
        (holiday or 调休) or the weekly hours; with the hours that day has."""
        entry = admin_calendar()
        found = entry.on(day) if entry is not None else None
        if found is not None:
            if found.kind in ("holiday", "closed"):
                what = "holiday" if found.kind == "holiday" else "closed date"
                return DayRule(True, [], "admin", f"admin {what}: {found.name or day}")
            if found.kind == "makeup":
                named = f": {found.name}" if found.name else ""
                return DayRule(False, self._makeup_ranges(), "admin",
                               f"admin make-up working day (调休){named}")
            return DayRule(False, list(found.hours), "admin", "admin hours for this date")
        if day in self.closed_dates:
            return DayRule(True, [], "closed_dates", "a closed date of this calendar")
        statutory, makeup = self._prc(day)
        if statutory:
            name = chinese_calendar.get_holiday_detail(day)[1]
            return DayRule(True, [], "library", f"PRC holiday ({name}, chinesecalendar)")
        if makeup and day.weekday() >= 5:
            return DayRule(False, self._makeup_ranges(), "library",
                           "PRC make-up working day (调休, chinesecalendar)")
        why = "weekly hours" if self.holiday_data(day) or not self.prc_holidays else \
            "weekly hours (no PRC holiday data for this year)"
        return DayRule(False, self.hours.get(WEEKDAYS[day.weekday()], []), "weekly", why)

    def _makeup_ranges(self) -> list[str]:
        return self.makeup_hours if self.makeup_hours is not None else self.hours.get("mon", [])

    def ranges_for(self, day: date) -> list[str]:
        return self.day_rule(day).ranges

    def status(self, at: datetime) -> CalendarStatus:
        local = self.local(at)
        rule = self.day_rule(local.date())
        if rule.holiday:
            return "holiday"
        now = local.time().replace(tzinfo=None)
        for r in rule.ranges:
            start, end = parse_range(r)
            if start <= now and (end is None or now < end):
                return "open"
        return "closed"


@dataclass(frozen=True)
class DayRule:
    """How a calendar treats one day: closed all day as a holiday, or these hours."""

    holiday: bool
    ranges: list[str]
    source: RuleSource
    why: str
