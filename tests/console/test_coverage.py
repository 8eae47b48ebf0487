"""The holiday-data coverage warning: chinesecalendar has no data past its last year, so
/readyz, `hotline flows check` and the console warn when the next 60 days reach past it."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from app.flows.coverage import coverage_warning, holiday_data_until
from app.main import project_path

UNTIL = holiday_data_until()


def test_the_library_really_stops_at_its_last_year() -> None:
    chinese_calendar.is_holiday(UNTIL)  # has data
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_holiday(UNTIL + timedelta(days=1))


def test_warns_only_when_the_next_60_days_are_not_covered() -> None:
    assert coverage_warning(UNTIL - timedelta(days=60)) is None
    warning = coverage_warning(UNTIL - timedelta(days=59))
    assert warning is not None
    assert f"ends on {UNTIL.isoformat()}" in warning
    assert f"from {(UNTIL + timedelta(days=1)).isoformat()}" in warning
    assert "falls back to weekly hours" in warning
    assert coverage_warning(date(UNTIL.year + 1, 3, 1)) is not None


def test_flows_check_prints_it(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "app.cli", "flows", "check"],
                         capture_output=True, text=True, cwd=project_path(), timeout=300)
    assert run.returncode == 0, run.stderr
    today_warning = coverage_warning()
    if today_warning is None:
        assert "holiday data" not in run.stderr
    else:
        assert f"warning: {today_warning}" in run.stderr
