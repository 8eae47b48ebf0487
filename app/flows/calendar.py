"""Business calendars: weekly hours in an IANA time zone, PRC holidays and 调休, closed dates.

``status(at)`` answers ``open`` / ``closed`` / ``holiday`` for an aware instant:

1. a custom closed date, or a PRC statutory holiday (``chinese_calendar``) -> ``holiday``;
2. a PRC make-up workday (调休, a Saturday or Sunday worked instead) uses ``makeup_hours``
   (default: Monday's hours);
3. otherwise the weekly hours of that weekday, in the calendar's time zone.

Years ``chinese_calendar`` has no data for fall back to weekly hours (``holiday_data(d)``
says whether the answer knew about holidays).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
from pydantic import BaseModel, ConfigDict, Field, field_validator

CalendarStatus = Literal["open", "closed", "holiday"]
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

    def ranges_for(self, day: date) -> list[str]:
        statutory, makeup = self._prc(day)
        if statutory or day in self.closed_dates:
            return []
        if makeup and day.weekday() >= 5:
            if self.makeup_hours is not None:
                return self.makeup_hours
            return self.hours.get("mon", [])
        return self.hours.get(WEEKDAYS[day.weekday()], [])

    def status(self, at: datetime) -> CalendarStatus:
        local = self.local(at)
        day = local.date()
        if day in self.closed_dates or self._prc(day)[0]:
            return "holiday"
        now = local.time().replace(tzinfo=None)
        for r in self.ranges_for(day):
            start, end = parse_range(r)
            if start <= now and (end is None or now < end):
                return "open"
        return "closed"
