"""The admin calendar (``<data_dir>/calendar.yaml``) beside chinesecalendar: an admin
holiday closes a flow's calendar, a make-up Saturday opens it, routing's day kinds follow,
a year the admin entered stops the coverage warning, and a broken file keeps the last good
one. The real flow engine and loader, the real file (reloaded when it changes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.api.calendar_admin import preview
from app.flows.admin_calendar import (
    AdminCalendar,
    AdminCalendarFile,
    AdminEntry,
    use_admin_calendar,
)
from app.flows.coverage import coverage_warning
from app.flows.engine import FlowEngine
from app.flows.loader import load_flow
from app.flows.runtime import CallContext
from app.nlu.intents import load_intents
from app.routing.conditions import day_kind
from app.settings import PROJECT_ROOT

SH = ZoneInfo("Asia/Shanghai")
DATA = Path(__file__).parent / "data"
THURSDAY = date(2026, 11, 26)  # an ordinary workday in the library
SATURDAY = date(2026, 11, 28)


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[AdminCalendarFile]:
    file = use_admin_calendar(tmp_path / "calendar.yaml")
    assert file is not None
    yield file
    use_admin_calendar(None)


@pytest.fixture(scope="module")
def engine() -> FlowEngine:
    catalog = load_intents(PROJECT_ROOT / "intents")
    return FlowEngine({"small": load_flow(DATA / "small.yaml", catalog.names())}, catalog)


def outcome(engine: FlowEngine, at: datetime) -> str:
    step = engine.start("small", CallContext(call_id="c1", now=at))
    return step.hangup.outcome if step.hangup else step.state.node


def test_admin_holiday_closes_a_weekday_then_removing_it_reopens(
        admin: AdminCalendarFile, engine: FlowEngine) -> None:
    ten = datetime(2026, 11, 26, 10, 0, tzinfo=SH)
    assert outcome(engine, ten) == "menu"
    admin.save(AdminCalendar(entries=[AdminEntry(date=THURSDAY, kind="holiday",
                                                 name="公司周年")]))
    assert outcome(engine, ten) == "holiday"
    calendar = engine.flows["small"].calendar
    assert calendar is not None
    rule = calendar.day_rule(THURSDAY)
    assert (rule.holiday, rule.source) == (True, "admin") and "公司周年" in rule.why
    assert day_kind(THURSDAY) == "holiday"  # routing's `day:` conditions agree
    admin.save(AdminCalendar())
    assert outcome(engine, ten) == "menu"
    assert calendar.day_rule(THURSDAY).source == "weekly"


def test_admin_makeup_saturday_is_open_with_weekday_hours(
        admin: AdminCalendarFile, engine: FlowEngine) -> None:
    ten = datetime(2026, 11, 28, 10, 0, tzinfo=SH)
    assert outcome(engine, ten) == "closed"
    admin.save(AdminCalendar(entries=[AdminEntry(date=SATURDAY, kind="makeup")]))
    assert outcome(engine, ten) == "menu"
    assert outcome(engine, datetime(2026, 11, 28, 19, 0, tzinfo=SH)) == "closed"
    assert day_kind(SATURDAY) == "makeup"
    with pytest.raises(ValueError, match="Saturday or Sunday; 2026-11-26 is a Thursday"):
        AdminEntry(date=THURSDAY, kind="makeup")


def test_the_preview_says_why(admin: AdminCalendarFile, engine: FlowEngine) -> None:
    admin.save(AdminCalendar(entries=[AdminEntry(date=SATURDAY, kind="makeup", name="补班")]))
    rows = {r["date"]: r for d in (THURSDAY, SATURDAY, date(2026, 10, 1), date(2027, 5, 3))
            for r in preview(engine.flows, d)}
    assert (rows["2026-11-26"]["status"], rows["2026-11-26"]["source"]) == ("open", "weekly")
    assert rows["2026-11-28"]["status"] == "open" and rows["2026-11-28"]["source"] == "admin"
    assert rows["2026-11-28"]["hours"] == ["09:00-18:00"] and "补班" in rows["2026-11-28"]["why"]
    assert (rows["2026-10-01"]["status"], rows["2026-10-01"]["source"]) == ("holiday",
                                                                            "library")
    assert "National Day" in rows["2026-10-01"]["why"]
    assert "no PRC holiday data" in rows["2027-05-03"]["why"]


def test_hours_entry_and_closed_date(admin: AdminCalendarFile, engine: FlowEngine) -> None:
    admin.save(AdminCalendar(entries=[
        AdminEntry(date=THURSDAY, kind="hours", hours=["13:00-15:00"]),
        AdminEntry(date=date(2026, 11, 27), kind="closed", name="moving office")]))
    assert outcome(engine, datetime(2026, 11, 26, 10, 0, tzinfo=SH)) == "closed"
    assert outcome(engine, datetime(2026, 11, 26, 14, 0, tzinfo=SH)) == "menu"
    assert outcome(engine, datetime(2026, 11, 27, 10, 0, tzinfo=SH)) == "holiday"


def test_a_year_the_admin_entered_counts_as_covered(admin: AdminCalendarFile) -> None:
    late_2026 = date(2026, 11, 20)  # an injected "today": the next 60 days reach 2027
    assert coverage_warning(late_2026) is not None
    admin.save(AdminCalendar(entries=[AdminEntry(date=date(2027, 1, 1), kind="closed")]))
    assert coverage_warning(late_2026) is not None  # a closed date is not a holiday year
    admin.save(AdminCalendar(entries=[AdminEntry(date=date(2027, 1, 1), kind="holiday",
                                                 name="元旦")]))
    assert coverage_warning(late_2026) is None
    warning = coverage_warning(date(2027, 11, 20))  # 2028 is not entered
    assert warning is not None and "ends on 2027-12-31" in warning
    assert "admin calendar" in warning


def test_a_broken_file_keeps_the_last_good_calendar(admin: AdminCalendarFile) -> None:
    admin.save(AdminCalendar(entries=[AdminEntry(date=THURSDAY, kind="holiday", name="x")]))
    assert admin.get().on(THURSDAY) is not None
    admin.path.write_text("entries:\n  - {date: 2027-02-30, kind: holiday, name: y}\n",
                          encoding="utf-8")
    assert admin.get().on(THURSDAY) is not None
    assert admin.problem is not None
    assert "calendar.yaml: YAML error: day is out of range" in admin.problem
    admin.path.write_text("entries:\n  - {date: 2027-02-01, kind: holiday, name: y}\n"
                          "  - {date: 2027-02-01, kind: closed}\n", encoding="utf-8")
    admin.get()
    assert admin.problem is not None and "2027-02-01 has two entries" in admin.problem
