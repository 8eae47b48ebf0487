"""The reports API on a real server: the figures as JSON with their formulas, CSV tables,
the streamed CDR export (masked for roles that may not see phone numbers, audited),
refusals."""

from __future__ import annotations

import csv
import io

import httpx

from app.auth import Role
from tests.console.calls import DAY_START
from tests.console.conftest import Console
from tests.helpers.auth import ADMIN

RANGE = {"start": DAY_START.isoformat(), "end": DAY_START.replace(day=27).isoformat()}


def get(console: Console, path: str, role: Role, **params: str) -> httpx.Response:
    return httpx.get(console.url + path, params={**RANGE, **params},
                     cookies=console.roles[role].cookies, timeout=60)


def test_reports_as_json_and_csv(console: Console) -> None:
    got = get(console, "/v1/reports/outcomes", Role.ANALYST)
    assert got.status_code == 200, got.text
    figures = {f["key"]: f for f in got.json()["figures"]}
    assert figures["containment"]["shown"] == "20.0 %"
    assert figures["containment"]["formula"] == "contained / answered"
    assert figures["answer_rate"]["label_zh"] == "接通率"
    assert figures["agent_answer_rate"]["shown"] == "0.0 %"  # nobody answered by an agent
    table = get(console, "/v1/reports/menu_nodes/csv", Role.SUPERVISOR)
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(table.text.lstrip("\ufeff"))))
    assert rows[0][0] == "node" and rows[1][0] == "menu" and "我要退货啊 (2)" in rows[1]
    narrowed = get(console, "/v1/reports/outcomes", Role.ANALYST, locale="en")
    assert {f["key"]: f["value"] for f in narrowed.json()["figures"]}["offered"] == 1
    bad = get(console, "/v1/reports/outcomes", Role.ANALYST, tz="Mars/Base")
    assert bad.status_code == 422 and "unknown time zone" in bad.text
    unknown = get(console, "/v1/reports/nope", Role.ANALYST)
    assert unknown.status_code == 404 and "outcomes" in unknown.json()["detail"]
    assert get(console, "/v1/reports/outcomes", Role.AGENT).status_code == 403
    assert get(console, "/v1/reports/outcomes", Role.DEVELOPER).status_code == 403


def test_cdr_export_is_streamed_masked_and_audited(console: Console) -> None:
    for role, caller in ((Role.ANALYST, "*******8000"), (Role.ADMIN, "13800138000")):
        with httpx.stream("GET", f"{console.url}/v1/reports/export/calls.csv", params=RANGE,
                          cookies=console.roles[role].cookies, timeout=60) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers  # streamed
            text = "".join(response.iter_text())
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert [r["id"] for r in rows] == ["c1", "c2", "c3", "c4", "c5"]
        assert {r["caller_number"] for r in rows} == {caller}
        assert rows[1]["outcome"] == "abandoned" and rows[3]["handoff_target"] == "support"
    audit = httpx.get(f"{console.url}/v1/audit", headers=ADMIN, params={"limit": 500},
                      timeout=60)
    assert any(e["action"] == "calls.export" and e["actor"] == "test-analyst"
               for e in audit.json()["items"])


def test_readyz_warns_about_holiday_data(console: Console) -> None:
    from app.flows.coverage import coverage_warning

    body = httpx.get(f"{console.url}/readyz", timeout=60).json()
    expected = coverage_warning()
    assert body["warnings"] == ({"holiday_data": expected} if expected else {})
