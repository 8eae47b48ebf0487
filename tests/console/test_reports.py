"""Reports over a hand-checkable day of calls written through the real repository, on
SQLite and PostgreSQL: the figures a reader reads (see ``tests/console/calls.py``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.reports import ReportFilter, run_report
from app.storage import CallRepository, Database
from tests.console.calls import DAY_START, SUPPORT, write_day

DAY = ReportFilter(start=DAY_START, end=DAY_START + timedelta(days=1))


def shown(db: Database, name: str, f: ReportFilter = DAY) -> dict[str, str]:
    return {fig.key: fig.shown() for fig in run_report(db, name, f).figures}


def test_outcomes_and_the_chinese_figures(db: Database, repo: CallRepository) -> None:
    write_day(repo)
    report = run_report(db, "outcomes", DAY)
    got = {f.key: f.shown() for f in report.figures}
    assert got["offered"] == "5" and got["answered"] == "5"
    assert got["answer_rate"] == "100.0 %"
    assert got["contained"] == "1" and got["containment"] == "20.0 %"
    assert got["handed_off"] == "3" and got["handoff_rate"] == "60.0 %"
    assert got["abandoned"] == "2" and got["short_abandons"] == "1"
    assert got["abandon_rate"] == "50.0 %"  # (2 - 1) / (3 - 1)
    assert got["lost_rate"] == "40.0 %"  # (5 - 5 + 2) / 5
    # the agent columns exist (migration 0005) and no agent answered any of these calls
    agent = report.figure("agent_answer_rate")
    assert agent.shown() == "0.0 %" and not agent.why
    assert all(f.formula for f in report.figures)
    assert {r[0]: r[1] for r in report.rows} == {"completed": 2, "abandoned": 2,
                                                  "caller_hangup": 1}


def test_volume_in_local_hours_and_by_number(db: Database, repo: CallRepository) -> None:
    write_day(repo)
    by_hour = run_report(db, "calls_by_hour", DAY)
    assert [(r[0], r[1]) for r in by_hour.rows] == [
        ("2026-11-26 09:00", 2), ("2026-11-26 10:00", 2), ("2026-11-26 11:00", 1)]
    by_day = run_report(db, "calls_by_day", DAY)
    assert by_day.rows == [["2026-11-26", 5, 3, 2]]
    by_number = run_report(db, "calls_by_number", DAY)
    assert by_number.rows == [["4008001234", 4, 2, 1], [SUPPORT, 1, 1, 1]]
    utc = ReportFilter(start=DAY.start, end=DAY.end, tz="UTC")
    assert run_report(db, "calls_by_hour", utc).rows[0][0] == "2026-11-26 01:00"


def test_filters_number_locale_and_range(db: Database, repo: CallRepository) -> None:
    write_day(repo)
    en = ReportFilter(start=DAY.start, end=DAY.end, locale="en")
    assert shown(db, "outcomes", en)["offered"] == "1"
    support = ReportFilter(start=DAY.start, end=DAY.end, number=SUPPORT)
    assert shown(db, "handoffs", support)["transfers"] == "1"
    morning = ReportFilter(start=DAY.start, end=DAY.start + timedelta(hours=10))
    assert shown(db, "outcomes", morning)["offered"] == "2"
    next_day = ReportFilter(start=DAY.end, end=DAY.end + timedelta(days=1))
    assert shown(db, "outcomes", next_day)["answer_rate"] == "n/a"


def test_handoffs_and_waits(db: Database, repo: CallRepository) -> None:
    write_day(repo)
    handoffs = run_report(db, "handoffs", DAY)
    assert handoffs.rows[0][:3] == ["caller_asked", "support", 2]
    assert handoffs.chart == [("caller_asked", 2.0), ("no_match", 1.0)]
    waits = run_report(db, "waits", DAY)
    got = {f.key: f.shown() for f in waits.figures}
    # queued callers, none answered by an agent: no answer speed, a 0 % service level
    assert got["asa"] == "n/a" and got["service_level"] == "0.0 %"
    assert got["avg_abandon_wait"] == "16.5 s"  # (3 + 30) / 2
    assert dict((r[0], r[1]) for r in waits.rows)["0-5 s"] == 1
    assert dict((r[0], r[1]) for r in waits.rows)["30-60 s"] == 1


def test_intents_nodes_and_sentiment(db: Database, repo: CallRepository) -> None:
    write_day(repo)
    intents = run_report(db, "intents", DAY)
    got = {f.key: f.shown() for f in intents.figures}
    assert got["turns"] == "3" and got["refused_rate"] == "33.3 %"
    assert got["low_confidence_rate"] == "50.0 %"
    assert {r[0] for r in intents.rows} == {"order_status", "refund", "(refused)"}
    nodes = run_report(db, "menu_nodes", DAY)
    assert nodes.rows == [["menu", 5, 2, 40.0, 1, 20.0, "我要退货啊 (2)"]]
    sentiment = run_report(db, "sentiment", DAY)
    got = {f.key: f.shown() for f in sentiment.figures}
    assert got["ended_angry"] == "1" and got["ended_angry_rate"] == "33.3 %"
    assert {r[0]: r[1] for r in sentiment.rows} == {"negative": 2, "neutral": 1,
                                                     "positive": 1}


def test_bad_filters_say_why() -> None:
    with pytest.raises(ValueError, match="must be after start"):
        ReportFilter(start=DAY.end, end=DAY.start)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        ReportFilter(start=DAY.start, end=DAY.end, tz="Mars/Base")


def test_csv_cells_never_run_as_formulas() -> None:
    from app.reports.search import csv_lines

    lines = list(csv_lines(["said", "n"], iter([["=HYPERLINK(\"http://x\")", -1],
                                                 ["我要退货啊", None]])))
    assert lines[0] == "\ufeffsaid,n\r\n"
    assert lines[1] == "\"'=HYPERLINK(\"\"http://x\"\")\",-1\r\n"
    assert lines[2] == "我要退货啊,\r\n"


def test_call_search_pages_and_capped_count(db: Database, repo: CallRepository,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from app.reports import search
    from app.reports.search import CallQuery, search_calls

    write_day(repo)
    rows, total = search_calls(db, CallQuery(filter=DAY, handed_off=True), limit=2)
    assert total == 3 and [r["id"] for r in rows] == ["c4", "c3"]  # newest first
    rows, _ = search_calls(db, CallQuery(filter=DAY, handed_off=True), limit=2, offset=2)
    assert [r["id"] for r in rows] == ["c2"]
    rows, _ = search_calls(db, CallQuery(filter=DAY, caller="13800138000", intent="refund"))
    assert [r["id"] for r in rows] == ["c2"]  # its last intent found
    assert search_calls(db, CallQuery(filter=DAY, caller="13900000000"))[1] == 0
    monkeypatch.setattr(search, "COUNT_CAP", 2)
    assert search_calls(db, CallQuery(filter=DAY))[1] == 3  # "2+": more than the cap
