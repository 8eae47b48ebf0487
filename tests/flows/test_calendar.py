"""Business calendars: weekly hours in a time zone, PRC holidays, 调休 make-up workdays."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.flows.calendar import BusinessCalendar

SH = ZoneInfo("Asia/Shanghai")
WEEKDAYS_9_18 = {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture
def office() -> BusinessCalendar:
    return BusinessCalendar(timezone="Asia/Shanghai", hours=WEEKDAYS_9_18,
                            closed_dates=[date(2026, 11, 27)])


def test_weekday_hours(office: BusinessCalendar) -> None:
    assert office.status(datetime(2026, 11, 26, 10, 0, tzinfo=SH)) == "open"  # Thursday
    assert office.status(datetime(2026, 11, 26, 8, 59, tzinfo=SH)) == "closed"
    assert office.status(datetime(2026, 11, 26, 18, 0, tzinfo=SH)) == "closed"


def test_weekend_is_closed(office: BusinessCalendar) -> None:
    assert office.status(datetime(2026, 11, 28, 11, 0, tzinfo=SH)) == "closed"  # Saturday


def test_prc_statutory_holiday(office: BusinessCalendar) -> None:
    # National Day 2026-10-01 is a Thursday: a normal weekday, but a statutory holiday
    assert office.status(datetime(2026, 10, 1, 11, 0, tzinfo=SH)) == "holiday"
    assert office.status(datetime(2026, 10, 9, 11, 0, tzinfo=SH)) == "open"


def test_makeup_saturday_is_a_workday(office: BusinessCalendar) -> None:
    # 2026-02-14 is a Saturday worked in exchange for the Spring Festival break (调休)
    assert office.status(datetime(2026, 2, 14, 10, 0, tzinfo=SH)) == "open"
    assert office.status(datetime(2026, 2, 21, 10, 0, tzinfo=SH)) == "holiday"  # 春节
    plain = office.model_copy(update={"prc_holidays": False})
    assert plain.status(datetime(2026, 2, 14, 10, 0, tzinfo=SH)) == "closed"


def test_custom_closed_date(office: BusinessCalendar) -> None:
    assert office.status(datetime(2026, 11, 27, 10, 0, tzinfo=SH)) == "holiday"


def test_time_zone_decides_the_local_hour() -> None:
    instant = datetime(2026, 11, 26, 2, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 in Shanghai
    shanghai = BusinessCalendar(timezone="Asia/Shanghai", hours=WEEKDAYS_9_18,
                                prc_holidays=False)
    new_york = BusinessCalendar(timezone="America/New_York", hours=WEEKDAYS_9_18,
                                prc_holidays=False)
    assert shanghai.status(instant) == "open"
    assert new_york.status(instant) == "closed"  # 21:00 the evening before


def test_bad_calendar_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown IANA time zone 'Mars/Olympus'"):
        BusinessCalendar(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="hours end before they start: '18:00-09:00'"):
        BusinessCalendar(hours={"mon": ["18:00-09:00"]})
    with pytest.raises(ValueError, match="aware datetime"):
        BusinessCalendar().status(datetime(2026, 1, 5, 10, 0))


def test_year_without_holiday_data_falls_back_to_weekly_hours() -> None:
    cal = BusinessCalendar(hours=WEEKDAYS_9_18)
    far = datetime(2099, 10, 1, 10, 0, tzinfo=SH)  # a Thursday
    assert not cal.holiday_data(far.date())
    assert cal.status(far) == "open"
