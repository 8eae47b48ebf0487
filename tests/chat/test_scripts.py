"""The conversation scripts (``ivr_flows/tests``) on both channels: as a phone call's inputs
reach the engine, and as web chats (a real chat session, its messages and its record in a
real SQLite database); ``channels: [voice]`` where a script is voice-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.chat.scripts import run_chat_script
from app.flows.engine import FlowEngine
from app.flows.loader import load_flows
from app.flows.scripts import Script, load_script, run_script, script_files
from app.nlu.intents import load_intents
from app.settings import PROJECT_ROOT, Settings
from app.storage.db import Database
from app.storage.repository import CallRepository

SCRIPTS = script_files(PROJECT_ROOT / "ivr_flows" / "tests")


@pytest.fixture(scope="module")
def engine() -> FlowEngine:
    catalog = load_intents(PROJECT_ROOT / "intents")
    return FlowEngine(load_flows(PROJECT_ROOT / "ivr_flows", catalog.names()), catalog)


@pytest.fixture(scope="module")
def chat_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("chat_scripts"), log_json=False)


@pytest.fixture(scope="module")
def repo(chat_settings: Settings) -> Iterator[CallRepository]:
    db = Database.from_settings(chat_settings)
    db.migrate()
    try:
        yield CallRepository(db)
    finally:
        db.dispose()


def test_every_script_runs_on_both_channels_but_the_voice_only_one() -> None:
    scripts = {p.name: load_script(p) for p in SCRIPTS}
    assert len(scripts) == 22
    voice_only = sorted(n for n, s in scripts.items() if s.channels == ["voice"])
    assert voice_only == ["21_repeat_star.yaml"]  # "*" repeats a prompt: a phone key
    assert all(s.channels == ["voice", "chat"] for n, s in scripts.items()
               if n not in voice_only)


@pytest.mark.parametrize("channel", ["voice", "chat"])
@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
async def test_script_on_channel(path: Path, channel: str, engine: FlowEngine,
                                 repo: CallRepository, chat_settings: Settings) -> None:
    script = load_script(path)
    if channel == "voice":
        result = await run_script(script, engine, str(path))
    else:
        result = await run_chat_script(script, engine, repo, chat_settings, str(path))
    assert result.channel == channel
    if channel not in script.channels:
        assert result.ok and result.skipped == "channels: voice"
        return
    assert result.ok and not result.skipped, "\n".join(result.failures + result.transcript)


async def test_the_voice_only_script_really_fails_as_a_chat(
        engine: FlowEngine, repo: CallRepository, chat_settings: Settings) -> None:
    path = PROJECT_ROOT / "ivr_flows" / "tests" / "21_repeat_star.yaml"
    script = load_script(path).model_copy(update={"channels": ["voice", "chat"]})
    result = await run_chat_script(script, engine, repo, chat_settings, str(path))
    assert not result.ok
    assert result.failures[0] == ("turn 2: keys '*' are not a button in chat (buttons: 1, 2, "
                                  "3, 4, 5, 0); mark the script channels: [voice] if it is "
                                  "voice-only")


async def test_a_wrong_expectation_fails_as_a_chat_and_the_record_is_checked(
        engine: FlowEngine, repo: CallRepository, chat_settings: Settings) -> None:
    script = Script.model_validate({
        "name": "wrong", "flow": "demo_hotline", "at": "2026-11-26T10:00:00+08:00",
        "turns": [{"dtmf": "1", "expect": {"node": "order_number", "say": "nonsense"}},
                  {"dtmf": "2", "expect": {"say": "退换货"}}],
        "outcome": {"hangup": "self_service"},
    })
    result = await run_chat_script(script, engine, repo, chat_settings)
    assert not result.ok
    assert result.failures[:2] == [
        "turn 1: expected node 'order_number', got 'main_menu'",
        "turn 1: expected the bot to say 'nonsense'; it said "
        "'请简单说出您要办理的业务，或按键选择：查询订单请按1，退换货和退款请按2，维修和售后请按3，"
        "产品咨询请按4，投诉请按5，人工服务请按0。'",
    ]
    assert result.failures[-2:] == [
        "outcome: the call had not ended (at node 'returns_menu')",
        "record: outcome 'caller_hangup', expected 'self_service'",
    ]


def test_an_unknown_channel_is_a_bad_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nflow: demo_hotline\nat: 2026-11-26T10:00:00+08:00\n"
                   "channels: [fax]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"(?s)bad\.yaml: bad script: .*channels\.0\n  Input "
                       r"should be .voice. or .chat."):
        load_script(bad)
