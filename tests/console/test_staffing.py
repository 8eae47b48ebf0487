"""Erlang C against a published worked example, and the staffing report over the
hand-made day (SQLite and PostgreSQL).

The example (Call Centre Helper, "Erlang C formula - made simple with an easy worked
example"): 100 calls in 30 minutes, 3 minutes' handle time (10 Erlangs), 80 % to be answered
within 20 s: 14 agents, a 17.41 % probability of waiting, service level 88.8 %, ASA 7.8 s,
occupancy 71.4 %; 13 agents reach only 79.6 %.
"""

from __future__ import annotations

import pytest

from app.reports import run_report
from app.reports.staffing import agents_needed, erlang_c, service_level
from app.storage import CallRepository, Database
from tests.console.calls import write_day
from tests.console.test_rollups import DAY


def test_erlang_c_matches_the_published_worked_example() -> None:
    assert erlang_c(10.0, 14) == pytest.approx(0.1741, abs=1e-4)
    assert erlang_c(10.0, 13) == pytest.approx(0.2853, abs=1e-4)
    assert service_level(10.0, 14, 180, 20) == pytest.approx(0.888, abs=1e-3)
    assert service_level(10.0, 13, 180, 20) == pytest.approx(0.796, abs=1e-3)
    need = agents_needed(100, 1800, 180, 0.8, 20)
    assert need.agents == 14 and need.traffic_erl == 10.0
    assert need.asa_s == pytest.approx(7.8, abs=0.05)
    assert need.occupancy == pytest.approx(0.714, abs=1e-3)
    assert erlang_c(10.0, 10) == 1.0  # as many agents as Erlangs: the queue never empties
    assert agents_needed(0, 1800, 180, 0.8, 20).agents == 0
    with pytest.raises(ValueError, match="bad staffing inputs"):
        agents_needed(10, 1800, 0, 0.8, 20)


def test_staffing_report_over_the_day(db: Database, repo: CallRepository) -> None:
    write_day(repo)
    report = run_report(db, "staffing", DAY)
    assert report.source == "raw" and "not kept in the roll-ups" in report.notes[-1]
    # handed off: c2 09:40, c3 10:05, c4 10:20 (Shanghai); no agent answered any call
    assert [r[:4] for r in report.rows] == [["09:30", 1.0, 0.1, 1], ["10:00", 2.0, 0.2, 1]]
    assert report.figure("peak_agents").value == 1
    aht = report.figure("aht")
    assert aht.value == 180.0 and "assumed" in aht.formula
