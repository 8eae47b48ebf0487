"""Conversation scripts of the demo hotline, and the `hotline flows` commands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.demo.orders import create_demo_app
from app.flows.chat import run_chat
from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.flows.scripts import Script, load_script, run_script, script_files
from app.nlu.intents import IntentCatalog, load_intents
from app.settings import PROJECT_ROOT
from tests.helpers.tools import missing

FLOWS = PROJECT_ROOT / "ivr_flows"
BAD = Path(__file__).parent / "data" / "bad"
SCRIPTS = script_files(FLOWS / "tests")


@pytest.fixture(scope="module")
def catalog() -> IntentCatalog:
    return load_intents(PROJECT_ROOT / "intents")


@pytest.fixture(scope="module")
def engine(catalog: IntentCatalog) -> FlowEngine:
    return FlowEngine(load_flows(FLOWS, catalog.names()), catalog)


def test_there_are_enough_scripts_in_both_locales() -> None:
    scripts = [load_script(p) for p in SCRIPTS]
    assert len(scripts) >= 15
    assert any(any(t.dtmf == "2" for t in s.turns[:1]) for s in scripts)  # English callers
    assert any(all(t.silence for t in s.turns) for s in scripts)  # silent caller


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
async def test_demo_script_passes(path: Path, engine: FlowEngine) -> None:
    result = await run_script(load_script(path), engine, str(path))
    assert result.ok, "\n".join(result.failures + result.transcript)


async def test_a_wrong_expectation_fails(engine: FlowEngine) -> None:
    script = Script.model_validate({
        "name": "wrong", "flow": "demo_hotline", "at": "2026-11-26T10:00:00+08:00",
        "turns": [{"dtmf": "1", "expect": {"node": "order_number", "say": "nonsense"}}],
        "outcome": {"hangup": "self_service"},
    })
    result = await run_script(script, engine)
    assert not result.ok
    assert result.failures[0] == "turn 1: expected node 'order_number', got 'main_menu'"
    assert result.failures[-1] == "outcome: the call had not ended (at node 'main_menu')"


async def test_demo_order_service() -> None:
    transport = httpx.ASGITransport(app=create_demo_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        ok = await client.get("/demo/orders/4567")
        missing = await client.get("/demo/orders/0000")
        bad = await client.get("/demo/orders/abc")
    assert ok.json()["status"] == "shipped" and ok.json()["eta"] == "2026-11-28"
    assert missing.status_code == 404 and bad.status_code == 422


@pytest.fixture
def runner() -> Iterator[CliRunner]:
    yield CliRunner()


def test_cli_check(runner: CliRunner) -> None:
    ok = runner.invoke(app, ["flows", "check"])
    assert ok.exit_code == 0, ok.output
    assert "ok: 1 flow(s): demo_hotline" in ok.output
    files = [str(BAD / "loop.yaml"), str(BAD / "bad_queue.yaml")]
    bad = runner.invoke(app, ["flows", "check", *files])
    assert bad.exit_code == 1
    assert f"{BAD / 'loop.yaml'}:8: cycle with no listening node" in bad.output
    assert f"{BAD / 'bad_queue.yaml'}:10: transfer to undeclared queue 'vip'" in bad.output


def test_cli_test_runs_scripts(runner: CliRunner, tmp_path: Path) -> None:
    ok = runner.invoke(app, ["flows", "test", str(SCRIPTS[0]), str(SCRIPTS[5])])
    assert ok.exit_code == 0, ok.output
    assert "4 passed, 0 failed, 0 skipped" in ok.output  # each as a call and as a chat
    assert f"PASS [chat] {SCRIPTS[5].name}" in ok.output
    voice = runner.invoke(app, ["flows", "test", "--channel", "voice", str(SCRIPTS[0])])
    assert voice.exit_code == 0 and "1 passed, 0 failed, 0 skipped" in voice.output
    star = next(p for p in SCRIPTS if p.name == "21_repeat_star.yaml")
    skipped = runner.invoke(app, ["flows", "test", "--channel", "chat", str(star)])
    assert skipped.exit_code == 0, skipped.output
    assert "0 passed, 0 failed, 1 skipped" in skipped.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(SCRIPTS[0].read_text(encoding="utf-8").replace(
        "outcome: {hangup: self_service}", "outcome: {transfer: general}"), encoding="utf-8")
    bad = runner.invoke(app, ["flows", "test", str(broken)])
    assert bad.exit_code == 1
    assert "FAIL [voice] broken.yaml" in bad.output and "FAIL [chat] broken.yaml" in bad.output
    assert "expected transfer to 'general', got no transfer" in bad.output


def test_cli_graph(runner: CliRunner, tmp_path: Path) -> None:
    mmd = tmp_path / "demo.mmd"
    result = runner.invoke(app, ["flows", "graph", "demo_hotline", "-o", str(mmd)])
    assert result.exit_code == 0, result.output
    text = mmd.read_text(encoding="utf-8")
    assert text.startswith("flowchart TD")
    assert 'n_main_menu -->|"#1 / order_status / 查订单 / order status"| n_order_number' in text
    svg = tmp_path / "demo.svg"
    result = runner.invoke(app, ["flows", "graph", "demo_hotline", "-o", str(svg)])
    if result.exit_code == 1 and "not installed" in result.output:
        missing("graphviz (dot)")
    assert result.exit_code == 0, result.output
    assert "<svg" in svg.read_text(encoding="utf-8")
    bad = runner.invoke(app, ["flows", "graph", "demo_hotline", "-o", str(tmp_path / "x.gif")])
    assert bad.exit_code == 1 and "unsupported output '.gif'" in bad.output


def test_chat_conversation(engine: FlowEngine, catalog: IntentCatalog) -> None:
    lines = iter(["#2", "#1", "#4567#", "#1", "#2"])
    out: list[str] = []
    at = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    step = run_chat(engine.flows["demo_hotline"], catalog, None, None, "+862161234567", at,
                    read=lambda _prompt: next(lines), out=out.append)
    assert step.state.outcome == "self_service"
    text = "\n".join(out)
    assert "bot> Your order 4 5 6 7, a front-load washer, has shipped." in text
    assert "-- call ended: self_service" in text
