"""The hourly roll-ups answer every report exactly as the raw records do (SQLite and a real
PostgreSQL): kept up to date as calls end, with the calls still in progress added live,
after a rebuild of a database that had calls before them; and the reports fall back to the
raw records (saying why) when the filter does not fit whole hours or the bins."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from app.cli import app
from app.reports import Report, ReportFilter, run_report
from app.reports.queries import ROLLED
from app.settings import load_settings
from app.storage import CallRepository, Database
from app.storage.models import ReportHourlyRow, ReportRollupStateRow
from app.storage.rollup import rebuild
from tests.console.calls import DAY_START, SUPPORT, write_day

DAY = ReportFilter(start=DAY_START, end=DAY_START + timedelta(days=1))
FILTERS = [
    DAY,
    ReportFilter(start=DAY.start, end=DAY.end, number=SUPPORT),
    ReportFilter(start=DAY.start, end=DAY.start + timedelta(hours=10), locale="zh", tz="UTC"),
    ReportFilter(start=DAY.start - timedelta(days=1), end=DAY.end + timedelta(days=1)),
]


def answer(report: Report) -> dict[str, Any]:
    got = report.as_json()
    got.pop("notes")
    got.pop("source")
    return got


def assert_rollups_equal_raw(db: Database) -> None:
    for f in FILTERS:
        for name in ROLLED:
            rolled = run_report(db, name, f)
            raw = run_report(db, name, f, rollups=False)
            assert rolled.source == "rollup", (name, rolled.notes)
            assert raw.source == "raw"
            assert answer(rolled) == answer(raw), (name, f.describe())


def rollup_rows(db: Database) -> list[tuple[Any, ...]]:
    t = ReportHourlyRow
    with db.session() as s:
        return sorted((*r[:8], round(r[8], 6)) for r in s.execute(
            select(t.hour, t.hotline_number, t.locale, t.metric, t.dim1, t.dim2, t.n, t.m,
                   t.total)).all())


def test_rollups_kept_as_calls_end_answer_as_the_raw_records(
        db: Database, repo: CallRepository) -> None:
    write_day(repo)
    # one call still in progress at 11:30 (counted live by the roll-up path)
    start = DAY_START + timedelta(hours=11, minutes=30)
    repo.start_call("open", SUPPORT, "13900139000", "sip", "zh", start, "main")
    repo.append_events("open", [({"type": "intent", "intent": "refund", "confidence": 0.3},
                                 start + timedelta(seconds=2))])
    assert_rollups_equal_raw(db)
    rolled = run_report(db, "outcomes", DAY)
    assert "from the hourly roll-ups" in rolled.notes[-1]
    assert {r[0]: r[1] for r in rolled.rows}["(in progress)"] == 1
    # by hand: the 09:00-10:00 Shanghai hour holds c1 (completed) and c2 (abandoned, handed)
    nine = (DAY_START + timedelta(hours=9))
    with db.session() as s:
        calls = dict(s.execute(
            select(ReportHourlyRow.dim1 + "/" + ReportHourlyRow.dim2, ReportHourlyRow.n)
            .where(ReportHourlyRow.hour == nine, ReportHourlyRow.metric == "calls")).all())
    assert calls == {"completed/100": 1, "abandoned/110": 1}
    # the call ends: it moves into the roll-ups, the answers stay the raw ones
    repo.end_call("open", "completed", start + timedelta(seconds=30))
    assert_rollups_equal_raw(db)
    assert {r[0]: r[1] for r in run_report(db, "outcomes", DAY).rows}["completed"] == 3


def test_rebuild_backfills_a_database_that_had_calls(db: Database,
                                                     repo: CallRepository) -> None:
    write_day(repo)
    write_day(repo, DAY_START - timedelta(days=1), prefix="y")
    kept = rollup_rows(db)
    assert kept  # maintained as the calls ended
    with db.session(write=True) as s:  # as a database migrated to 0007 with calls in it
        s.execute(delete(ReportHourlyRow))
        s.execute(delete(ReportRollupStateRow))
    never = run_report(db, "outcomes", DAY)
    assert never.source == "raw" and "never built" in never.notes[-1]
    assert never.figure("offered").value == 5
    assert rebuild(db) == 10
    assert rollup_rows(db) == kept  # the rebuild writes what the calls' ends wrote
    assert_rollups_equal_raw(db)
    assert rebuild(db) == 10 and rollup_rows(db) == kept  # and again: no double counting


def test_filters_the_rollups_cannot_answer_fall_back_to_raw(db: Database,
                                                            repo: CallRepository) -> None:
    write_day(repo)
    cases = [
        (ReportFilter(start=DAY.start + timedelta(minutes=30), end=DAY.end), {},
         "start is not on a whole UTC hour"),
        (ReportFilter(start=DAY.start, end=DAY.end, tz="Asia/Kolkata"), {},
         "not a whole number of hours off UTC"),
        (DAY, {"sla_s": 25.0}, "service level 25 s is not one of"),
        (DAY, {"short_abandon_s": 3.0}, "short abandon 3 s"),
        (DAY, {"low_confidence": 0.5}, "low confidence 0.5"),
    ]
    for f, kw, why in cases:
        report = run_report(db, "waits", f, **kw)
        assert report.source == "raw" and why in report.notes[-1], (why, report.notes)
    # a half hour off: c1 (09:10) and c2 (09:40) Shanghai, counted from the raw records
    half = ReportFilter(start=DAY.start + timedelta(hours=9, minutes=30), end=DAY.end)
    assert run_report(db, "outcomes", half).figure("offered").value == 4


def test_rollup_command_rebuilds_the_configured_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    db = Database.from_settings(load_settings(None))
    db.migrate()
    write_day(CallRepository(db))
    with db.session(write=True) as s:
        s.execute(delete(ReportHourlyRow))
        s.execute(delete(ReportRollupStateRow))
    assert run_report(db, "outcomes", DAY).source == "raw"
    done = CliRunner().invoke(app, ["reports", "rollup"])
    assert done.exit_code == 0 and "rolled up 5 ended calls" in done.output, done.output
    assert run_report(db, "outcomes", DAY).source == "rollup"
    assert run_report(db, "outcomes", DAY).figure("offered").value == 5
    db.dispose()
