"""`hotline routing`: check, import, export, explain and replay, including bad input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from app.cli import app
from app.routing.loader import load_file
from app.routing.plan import RoutePlan
from app.storage import CallRepository, Database
from tests.helpers.routing import BEIJING_MOBILE, DEMO, SHANGHAI

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fresh data dir; no intents catalog (loading it costs seconds; one test uses it)."""
    return {"HOTLINE_DATA_DIR": str(tmp_path / "data"), "HOTLINE_LOG_JSON": "false",
            "HOTLINE_INTENTS_DIR": str(tmp_path / "no-intents")}


def run(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(app, ["routing", *args], env=env)


def test_check_the_demo_and_a_broken_file(env: dict[str, str], tmp_path: Path) -> None:
    result = run(env, "check")
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output and "9 agent(s), 4 group(s)" in result.output
    assert "intent names not checked" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO.read_text(encoding="utf-8").replace(
        "members: [liu.yang, zhao.lei]", "members: [liu.yang, zhao.lie]"), encoding="utf-8")
    bad.write_text(bad.read_text(encoding="utf-8").replace("{sentiment: negative}",
                                                           "{intent: [complaint, teleport]}"),
                   encoding="utf-8")
    result = run({k: v for k, v in env.items() if k != "HOTLINE_INTENTS_DIR"}, "check",
                 str(bad))
    assert result.exit_code == 1
    assert "unknown intent 'teleport' (not defined in intents/)" in result.output
    assert "complaint'" not in result.output  # a real intent of the catalog
    line = next(i for i, text in enumerate(bad.read_text(encoding="utf-8").splitlines(), 1)
                if "zhao.lie" in text)
    assert f"{bad}:{line}: group 'beijing': unknown agent 'zhao.lie'" in result.output


def test_check_holds_hotlines_against_their_flows(env: dict[str, str], tmp_path: Path) -> None:
    text = DEMO.read_text(encoding="utf-8")
    lines = text.splitlines()
    flow_line = next(i for i, t in enumerate(lines, 1) if "flow: demo_hotline" in t)
    queue_line = next(i for i, t in enumerate(lines, 1) if "{queue: senior}" in t)
    other = _write(tmp_path / "other.yaml", text.replace("flow: demo_hotline", "flow: nope"))
    result = run(env, "check", str(other))
    assert result.exit_code == 1
    assert f"{other}:{flow_line}: flow 'nope' not found (flows: demo_hotline)" in result.output
    result = run(env, "import", str(other))
    assert result.exit_code == 1 and "flow 'nope' not found" in result.output
    typo = _write(tmp_path / "typo.yaml", text.replace("{queue: senior}", "{queue: seniors}"))
    result = run(env, "check", str(typo))
    assert result.exit_code == 1
    assert (f"{typo}:{queue_line}: flow 'demo_hotline' has no queue 'seniors' (general, "
            "orders, repairs, returns, sales, senior)") in result.output


def test_import_export_round_trip_and_a_failed_import_changes_nothing(
        env: dict[str, str], tmp_path: Path) -> None:
    result = run(env, "export")
    assert result.exit_code == 1 and "no routing in the database" in result.output
    result = run(env, "import", str(DEMO))
    assert result.exit_code == 0, result.output
    assert "9 agent(s), 4 group(s), 1 hotline(s), 8 rule(s)" in result.output
    out = tmp_path / "exported.yaml"
    assert run(env, "export", "-o", str(out)).exit_code == 0
    assert load_file(out) == load_file(DEMO)
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  x: {name: X, languages: [zh]}\ngroups:\n  g: {members: [y]}\n",
                   encoding="utf-8")
    result = run(env, "import", str(bad))
    assert result.exit_code == 1 and f"{bad}:4: group 'g': unknown agent 'y'" in result.output
    stdout = run(env, "export").output
    assert load_file(_write(tmp_path / "again.yaml", stdout)) == load_file(DEMO)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_explain_prints_the_rules_the_target_and_the_candidates(env: dict[str, str],
                                                                tmp_path: Path) -> None:
    roster = _write(tmp_path / "roster.yaml",
                    "agents:\n  liu.yang: away meal\n  zhao.lei: {idle_s: 300}\n")
    result = run(env, "explain", "--number", "4008001234", "--caller", BEIJING_MOBILE,
                 "--at", "2026-03-02T10:00:00+08:00", "--rules", str(DEMO),
                 "--roster", str(roster))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "caller   +8613800138000: 北京 Beijing (mobile; geocoder: 北京市)" in out
    assert "time     2026-03-02 10:00 +0800 (workday, calendar open)" in out
    assert "6 english              no    locale is zh, rule wants en" in out
    assert "7 beijing              MATCH" in out
    assert "candidates: 1. zhao.lei 赵磊 [web, sip:zhao.lei@pbx.example.com] next in turn" in out
    assert "skipped:    liu.yang: away (meal)" in out
    assert "[after 60 s] group zh_service" in out and "[after 180 s] callback" in out


def test_explain_as_json_and_with_what_the_bot_learned(env: dict[str, str]) -> None:
    result = run(env, "explain", "--number", "400-800-1234", "--caller", "075512345678",
                 "--at", "2026-02-14T10:00:00+08:00", "--rules", str(DEMO), "--intent",
                 "complaint", "--queue", "senior", "--crm", "vip=false", "--json")
    assert result.exit_code == 0, result.output
    plan = RoutePlan.model_validate_json(result.output)
    assert (plan.rule, plan.time.day) == ("complaints", "makeup")  # 调休 Saturday: senior open
    assert plan.steps[0].group == "senior" and plan.steps[0].status == "queue"
    assert plan.rules[2].reason == "crm.vip is false, rule wants true"
    assert plan.caller.province == "广东"


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "yesterday"], "--at must be ISO 8601"),
    (["--at", "2026-03-02T10:00:00"], "needs a UTC offset"),
    (["--sentiment", "furious"], "--sentiment must be negative, neutral or positive"),
    (["--slot", "order_number"], "--slot must be KEY=VALUE"),
])
def test_explain_bad_input(env: dict[str, str], args: list[str], message: str) -> None:
    result = run(env, "explain", "--number", "4008001234", "--caller", BEIJING_MOBILE,
                 "--rules", str(DEMO), *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_explain_needs_routing_from_the_database_or_a_file(env: dict[str, str]) -> None:
    result = run(env, "explain", "--number", "4008001234", "--caller", BEIJING_MOBILE)
    assert result.exit_code == 1
    assert "no routing in the database" in result.output
    assert run(env, "import", str(DEMO)).exit_code == 0
    result = run(env, "explain", "--number", "4008001234", "--caller", BEIJING_MOBILE,
                 "--at", "2026-03-02T10:00:00+08:00")
    assert result.exit_code == 0 and "7 beijing              MATCH" in result.output


def record_call(repo: CallRepository, call_id: str, caller: str, started: datetime,
                events: list[dict[str, Any]], outcome: str, duration_s: float) -> None:
    repo.start_call(call_id, "4008001234", caller, "webrtc", "zh", started, "demo_hotline")
    for i, event in enumerate(events, 1):
        repo.append_event(call_id, event, started + timedelta(seconds=5 * i))
    repo.end_call(call_id, outcome, started + timedelta(seconds=duration_s))


@pytest.fixture
def history(env: dict[str, str], tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'data' / 'hotline.db'}")
    db.migrate()
    repo = CallRepository(db)
    day = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
    transfer = {"type": "transfer", "queue": "general", "reason": "caller_asked"}
    record_call(repo, "beijing-1", BEIJING_MOBILE, day, [transfer,
                {"type": "queue_timeout", "queue": "general", "waited_s": 120.0}],
                "completed", 200)
    record_call(repo, "english-1", "+862165432100", day + timedelta(minutes=5), [
        {"type": "call_started", "hotline_number": "4008001234",
         "caller_number": "+862165432100", "channel": "webrtc", "locale": "zh",
         "flow_id": "demo_hotline"},
        {"type": "locale_changed", "locale": "en"},
        {"type": "intent", "intent": "order_status", "confidence": 0.9},
        {"type": "sentiment", "score": -0.8, "label": "negative"},
        {"type": "crm", "data": {"vip": True}},
        {"type": "handoff_requested", "queue": "orders", "reason": "caller_asked"},
        {**transfer, "queue": "orders"},
    ], "abandoned", 70)  # (the transfer is the 7th event: 35 s in; the caller left at 70 s)
    record_call(repo, "shanghai-1", "+862165432100", day + timedelta(minutes=9),
                [transfer], "completed", 130)
    record_call(repo, "no-handoff", "+862165432100", day, [], "completed", 30)
    db.dispose()
    assert run(env, "import", str(DEMO)).exit_code == 0
    return db


def test_handoffs_are_rebuilt_from_the_event_log(history: Database) -> None:
    from app.routing.replay import load_handoffs

    day = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    handoffs = load_handoffs(history, day, day + timedelta(days=1))
    history.dispose()
    assert [h.request.call_id for h in handoffs] == ["beijing-1", "english-1", "shanghai-1"]
    english = handoffs[1].request
    assert (english.locale, english.intent, english.sentiment, english.sentiment_score) == (
        "en", "order_status", "negative", -0.8)
    assert (english.queue, english.crm) == ("orders", {"vip": True})
    assert handoffs[1].abandoned and handoffs[1].waited_s == pytest.approx(35.0)
    assert handoffs[0].waited_s == 120.0 and not handoffs[0].abandoned


def test_replay_shows_what_other_rules_would_have_changed(history: Database, env: dict[str, str],
                                                          tmp_path: Path) -> None:
    doc = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    rules = doc["hotlines"][0]["rules"]
    doc["hotlines"][0]["rules"] = [r for r in rules if r["name"] not in ("beijing", "vip")]
    proposed = _write(tmp_path / "proposed.yaml", yaml.safe_dump(doc, allow_unicode=True))
    result = run(env, "replay", "--from", "2026-03-02", "--to", "2026-03-02", "--rules",
                 str(proposed))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "3 handoff(s)" in out
    assert "changed: 2 of 3 handoff(s)" in out
    assert "beijing-1 +8613800138000: beijing/group beijing answered" in out
    assert "-> -/group zh_service answered" in out
    assert "english-1 +862165432100: vip/group senior" in out
    result = run(env, "replay", "--from", "2026-03-02", "--to", "2026-03-02", "--rules",
                 str(proposed), "--json")
    report = json.loads(result.output)
    assert report["recorded"] == {"handoffs": 3, "abandoned": 1, "mean_wait_s": 77.5,
                                  "outcomes": {"abandoned": 1, "completed": 2}}
    assert report["sides"]["database"]["by_target"] == {
        "group beijing": 1, "group senior": 1, "group zh_service": 1}
    assert [c["call_id"] for c in report["changed"]] == ["beijing-1", "english-1"]


def test_replay_with_a_roster_where_nobody_is_in(history: Database, env: dict[str, str],
                                                tmp_path: Path) -> None:
    roster = _write(tmp_path / "empty.yaml", "default: offline\n")
    result = run(env, "replay", "--from", "2026-03-02", "--to", "2026-03-03", "--roster",
                 str(roster), "--json")
    assert result.exit_code == 0, result.output
    sides = json.loads(result.output)["sides"]
    assert sides["database"]["answered"] == 3  # answered 3 s in, before the caller gave up
    proposed = sides[f"database + {roster}"]
    assert proposed["answered"] == 0 and proposed["outcomes"].get("callback", 0) >= 1


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-03-02", "--to", "2026-03-01", "--roster", "x.yaml"],
     "--to is before --from"),
    (["--from", "2026-03-02", "--to", "2026-03-03"], "nothing to compare"),
    (["--from", "March", "--to", "2026-03-03", "--roster", "x.yaml"], "must be a date"),
])
def test_replay_bad_input(env: dict[str, str], args: list[str], message: str) -> None:
    result = run(env, "replay", *args)
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_a_bad_roster_file_names_its_line(env: dict[str, str], tmp_path: Path) -> None:
    roster = _write(tmp_path / "roster.yaml", "agents:\n  li.na: available\n  li.na2: away\n")
    result = run(env, "explain", "--number", "4008001234", "--caller", BEIJING_MOBILE,
                 "--rules", str(DEMO), "--roster", str(roster))
    assert result.exit_code == 1
    assert f"{roster}:3: agents.li.na2: away needs a reason" in " ".join(result.output.split())
