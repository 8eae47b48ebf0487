"""The admin calendar through a real server as its admin: entries added and removed (a bad
date, a duplicate, a make-up day on a weekday refused with field and reason), the coverage
status for an injected "today" in late 2026 silenced by 2027's holidays, the page, the audit
log with the entries before and after, and every other role refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.auth import Role
from tests.console.conftest import Console
from tests.console.test_pages import page
from tests.helpers.auth import ADMIN

LATE_2026 = {"today": "2026-11-20"}


@pytest.fixture
def admin_call(console: Console) -> Iterator[Any]:
    admin = console.roles[Role.ADMIN]

    def call(method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
        return httpx.request(method, f"{console.url}/v1/config/calendar{path}", json=body,
                             params=params, cookies=admin.cookies, headers=admin.headers,
                             timeout=60)

    yield call
    # the session's server is shared: leave no entry (other pages' coverage warning)
    for e in call("GET", "").json()["entries"]:
        call("DELETE", f"/entries/{e['date']}")


def test_admin_enters_2027_and_the_coverage_warning_stops(console: Console,
                                                          admin_call: Any) -> None:
    before = admin_call("GET", "", **LATE_2026).json()
    assert before["coverage"]["warning"] and "2026-12-31" in before["coverage"]["warning"]

    added = admin_call("POST", "/entries", {"date": "2027-01-01", "kind": "holiday",
                                            "name": "元旦"})
    assert added.status_code == 201, added.text
    saturday = admin_call("POST", "/entries", {"date": "2027-02-20", "kind": "makeup"})
    assert saturday.status_code == 201, saturday.text
    now = admin_call("GET", "", **LATE_2026).json()
    assert now["coverage"]["warning"] is None and now["coverage"]["until"] == "2027-12-31"
    assert [e["date"] for e in now["entries"]] == ["2027-01-01", "2027-02-20"]
    assert (console.tmp / "data" / "calendar.yaml").is_file()

    shown = page(console, "/console/calendar", Role.ADMIN)
    assert shown.status_code == 200
    assert 'href="/console/calendar"' in shown.text and "元旦" in shown.text
    assert 'data-date="2027-02-20"' in shown.text

    removed = admin_call("DELETE", "/entries/2027-01-01")
    assert removed.status_code == 200 and removed.json()["removed"]["name"] == "元旦"
    assert admin_call("GET", "", **LATE_2026).json()["coverage"]["warning"]
    assert admin_call("DELETE", "/entries/2027-01-01").status_code == 404

    audit = httpx.get(f"{console.url}/v1/audit", headers=ADMIN, timeout=60,
                      params={"target": "calendar:2027-01-01"}).json()["items"]
    changes = {a["action"]: (a["before"], a["after"]) for a in audit}
    add_before, add_after = changes["calendar.add"]
    assert add_before == {"entries": []}
    assert add_after == {"entries": [{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}]}
    assert changes["calendar.remove"][1] == {"entries": [{"date": "2027-02-20",
                                                          "kind": "makeup"}]}


def test_bad_entries_get_field_and_reason(admin_call: Any) -> None:
    def refused(body: dict[str, Any]) -> tuple[list[Any], str]:
        answer = admin_call("POST", "/entries", body)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        return detail[0]["loc"], detail[0]["msg"]

    loc, msg = refused({"date": "2027-02-30", "kind": "closed"})
    assert loc == ["body", "date"] and "valid date" in msg
    loc, msg = refused({"date": "2027-01-04", "kind": "makeup"})
    assert loc == ["body", "date"] and "2027-01-04 is a Monday" in msg
    loc, msg = refused({"date": "2027-01-05", "kind": "holiday"})
    assert loc == ["body", "name"] and "needs a name" in msg
    loc, msg = refused({"date": "2027-01-05", "kind": "closed", "hours": ["09:00-18:00"]})
    assert loc == ["body", "hours"]
    assert admin_call("POST", "/entries", {"date": "2027-01-05", "kind": "closed"}
                      ).status_code == 201
    loc, msg = refused({"date": "2027-01-05", "kind": "holiday", "name": "again"})
    assert loc == ["body", "date"] and "already has an entry" in msg
    assert [e["date"] for e in admin_call("GET", "").json()["entries"]] == ["2027-01-05"]


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.ANALYST, Role.AGENT])
def test_other_roles_are_refused(console: Console, role: Role) -> None:
    who = console.roles[role]
    listed = httpx.get(f"{console.url}/v1/config/calendar", cookies=who.cookies,
                       headers=who.headers, timeout=60)
    added = httpx.post(f"{console.url}/v1/config/calendar/entries", cookies=who.cookies,
                       headers=who.headers, timeout=60,
                       json={"date": "2027-01-01", "kind": "closed"})
    assert (listed.status_code, added.status_code) == (403, 403)
    assert page(console, "/console/calendar", role).status_code in (403, 303)
