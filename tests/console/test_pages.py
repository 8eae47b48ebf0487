"""The console pages over a real server as each role: what each one sees (reports with
formulas and an SVG chart, call search, a call's transcript, events and recording player
only for the roles allowed, each access audited); a browser that is not signed in is sent
to the sign-in page."""

from __future__ import annotations

from typing import Any

import httpx

from app.auth import Role
from app.flows.coverage import coverage_warning
from app.settings import PROJECT_ROOT
from tests.console.conftest import Console
from tests.helpers.auth import ADMIN
from tests.helpers.server import KO_FLOW

DAY = {"start": "2026-11-26", "end": "2026-11-26"}


def page(console: Console, path: str, role: Role | None, lang: str = "en",
         **params: str) -> httpx.Response:
    return httpx.get(console.url + path, params=params, timeout=60,
                     cookies=console.roles[role].cookies if role else None,
                     headers={"Accept-Language": lang})


def test_reports_page(console: Console) -> None:
    reports = page(console, "/console/reports", Role.ANALYST, **DAY)
    assert reports.status_code == 200, reports.text
    assert 'data-key="containment"' in reports.text and "20.0 %" in reports.text
    assert "contained / answered" in reports.text and "<svg" in reports.text
    assert "/v1/reports/outcomes/csv?" in reports.text
    warning = coverage_warning()
    assert (warning is not None) == ("PRC holiday data" in reports.text)
    zh = page(console, "/console/reports", Role.SUPERVISOR, lang="zh-CN,zh;q=0.9",
              report="menu_nodes", **DAY)
    assert "报表" in zh.text and "我要退货啊 (2)" in zh.text and "未匹配率" in zh.text
    refused = page(console, "/console/reports", Role.AGENT)
    assert refused.status_code == 403 and "lacks reports:read" in refused.text


def test_call_search_and_detail_by_role(console: Console) -> None:
    search = page(console, "/console/calls", Role.ANALYST, outcome="abandoned", **DAY)
    assert search.status_code == 200
    assert 'data-call="c2"' in search.text and 'data-call="c3"' in search.text
    assert 'data-call="c1"' not in search.text and "*******8000" in search.text
    call = page(console, "/console/calls/c2", Role.ANALYST)
    assert "我要退货啊" in call.text and 'data-type="transfer"' in call.text
    played = page(console, "/console/calls/c3", Role.ANALYST)
    assert 'src="/v1/calls/c3/recording?id=' in played.text
    developer = page(console, "/console/calls/c3", Role.DEVELOPER)
    assert developer.status_code == 200 and "<audio" not in developer.text
    assert "may not see this" in developer.text
    assert page(console, "/console/calls/c3", Role.AGENT).status_code == 403
    nobody = page(console, "/console/calls/c2", None)
    assert nobody.status_code == 303
    assert nobody.headers["location"] == "/console/login?next=/console/calls/c2"
    login = page(console, nobody.headers["location"], None)
    assert login.status_code == 200 and 'id="login"' in login.text
    audit = httpx.get(f"{console.url}/v1/audit", headers=ADMIN, params={"limit": 500},
                      timeout=60).json()["items"]
    reads = {(e["actor"], e["target"]) for e in audit if e["action"] == "transcript.read"}
    assert {("test-analyst", "call:c2"), ("test-developer", "call:c3")} <= reads


def test_monitor_page_and_snapshot(console: Console) -> None:
    assert page(console, "/console/monitor", Role.SUPERVISOR).status_code == 200
    assert page(console, "/console/monitor", Role.ANALYST).status_code == 403
    snapshot = page(console, "/v1/monitor", Role.SUPERVISOR).json()
    assert snapshot["calls"] == [] and snapshot["queues"] == []


def test_config_page_explains_routing_and_checks_flows(console: Console) -> None:
    def explain(at: str) -> str:
        got = page(console, "/console/config", Role.ADMIN, number="4008001234",
                   caller="+8613800138000", at=at)
        assert got.status_code == 200, got.text
        return got.text

    assert "rule 7 &#39;beijing&#39; matched" in explain("2026-12-01T10:00")
    assert "rule 2 &#39;after_hours&#39; matched" in explain("2026-12-01T23:00")
    shown = explain("2026-12-01T10:00")
    assert "hotline flows check: ok" in shown and "holiday" in shown  # flows, rules listed
    assert page(console, "/console/config", Role.SUPERVISOR).status_code == 403
    admin = console.roles[Role.ADMIN]
    lines = KO_FLOW.read_text(encoding="utf-8").splitlines()
    assert lines[21] == "    next: menu"
    lines[21] = "    next: nowhere"  # line 22 now points at a node that does not exist
    checked = httpx.post(f"{console.url}/v1/config/flows/check", cookies=admin.cookies,
                         headers=admin.headers, timeout=60,
                         json={"filename": "broken.yaml", "text": "\n".join(lines)})
    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert body["ok"] is False
    first = body["errors"][0]
    assert (first["file"], first["line"]) == ("broken.yaml", 22)
    assert first["reason"] == "node 'greeting' goes to missing node 'nowhere'"


def test_admin_changes_a_rule_and_explain_follows(console: Console) -> None:
    admin = console.roles[Role.ADMIN]

    def save(text: str) -> httpx.Response:
        return httpx.post(f"{console.url}/v1/config/routing", cookies=admin.cookies,
                          headers=admin.headers, timeout=60, json={"text": text})

    def decision() -> str:
        shown = page(console, "/console/config", Role.ADMIN, number="4008001234",
                     caller="+8613800138000", at="2026-12-01T10:00").text
        return next(line for line in shown.splitlines() if line.startswith("decision "))

    assert decision() == "decision rule 7 &#39;beijing&#39; matched: group beijing"
    original = (PROJECT_ROOT / "routing" / "demo_hotline.yaml").read_text(encoding="utf-8")
    rule = "        when: {province: 北京}\n        target: {group: beijing}\n"
    assert rule in original
    broken = save(original.replace(rule, rule.replace("beijing}", "nowhere}")))
    assert broken.status_code == 422
    line = original[:original.index(rule)].count("\n") + 2  # the target's line
    assert f"routing.yaml:{line}: " in broken.text and "nowhere" in broken.text
    assert decision().endswith("group beijing")  # nothing saved
    saved = save(original.replace(rule, rule.replace("{group: beijing}",
                                                     "{group: zh_service}")))
    assert saved.status_code == 200, saved.text
    assert decision() == "decision rule 7 &#39;beijing&#39; matched: group zh_service"
    audit = httpx.get(f"{console.url}/v1/audit", headers=ADMIN, timeout=60,
                      params={"action": "routing.save"}).json()["items"]

    def target(rules: dict[str, Any]) -> Any:
        return next(r for r in rules["4008001234"] if r["name"] == "beijing")["target"]

    newest = audit[0]  # newest first
    assert newest["actor"] == "test-admin"
    assert target(newest["before"]) == {"group": "beijing"}
    assert target(newest["after"]) == {"group": "zh_service"}
    assert save(original).status_code == 200  # as it was, for the other tests
