"""``hotline users`` and ``hotline tokens`` on a real SQLite database, and the first-run
administrator of a real server: its password printed once to the terminal, never logged."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import structlog
from typer.testing import CliRunner

from app.cli import app
from app.log import configure_logging
from app.sim.cli import serve_in_process
from tests.helpers.live import live_settings


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def test_users_and_tokens_from_the_terminal(run: CliRunner) -> None:
    added = run.invoke(app, ["users", "add", "alice", "--role", "analyst", "--password-stdin"],
                       input="a long enough secret\n")
    assert added.exit_code == 0 and "created alice (analyst)" in added.output
    again = run.invoke(app, ["users", "add", "alice", "--role", "admin", "--password-stdin"],
                       input="a long enough secret\n")
    assert again.exit_code == 2 and "user 'alice' already exists" in again.output
    bad_role = run.invoke(app, ["users", "add", "bob", "--role", "boss", "--password-stdin"],
                          input="a long enough secret\n")
    assert bad_role.exit_code == 2 and "unknown role 'boss': use one of admin" in bad_role.output
    short = run.invoke(app, ["users", "add", "bob", "--role", "agent", "--password-stdin"],
                       input="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    no_tty = run.invoke(app, ["users", "add", "bob", "--role", "agent"], input="")
    assert no_tty.exit_code == 2 and "--password-stdin" in no_tty.output

    token = run.invoke(app, ["tokens", "create", "--user", "alice", "--scopes",
                             "calls:read,transcripts:read", "--name", "crm"])
    assert token.exit_code == 0 and token.stdout.strip().startswith("hlt_")
    too_much = run.invoke(app, ["tokens", "create", "--user", "alice", "--scopes",
                                "metrics:read"])
    assert too_much.exit_code == 2 and "does not allow: metrics:read" in too_much.output
    typo = run.invoke(app, ["tokens", "create", "--user", "alice", "--scopes", "calls:raed"])
    assert typo.exit_code == 2 and "unknown scope 'calls:raed'" in typo.output

    assert run.invoke(app, ["users", "passwd", "alice", "--password-stdin"],
                      input="another long secret\n").exit_code == 0
    assert run.invoke(app, ["users", "disable", "alice"]).exit_code == 0
    listed = json.loads(run.invoke(app, ["users", "list", "--json"]).stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [
        ("alice", "analyst", True)]
    tokens = json.loads(run.invoke(app, ["tokens", "list", "--json"]).stdout)
    assert tokens[0]["revoked_at"] is not None  # disabling revoked it
    missing = run.invoke(app, ["users", "passwd", "nobody", "--password-stdin"],
                         input="another long secret\n")
    assert missing.exit_code == 2 and "no user 'nobody'" in missing.output


async def test_first_start_creates_the_admin_and_prints_the_password_once(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    settings = live_settings(tmp_path, asr_models={}, auth_bootstrap_token=None,
                             intent_model_dir=tmp_path / "no-intent-model")
    configure_logging("INFO", json_logs=True)
    try:
        async with serve_in_process(settings) as served:
            url = served.url
            _, err = capfd.readouterr()
            banner = [line for line in err.splitlines() if "password:" in line]
            assert len(banner) == 1
            password = banner[0].split("password:")[1].strip()
            assert len(password) >= 16
            logged = [line for line in err.splitlines() if line.startswith("{")]
            assert any(json.loads(line)["event"] == "first_admin_created" for line in logged)
            assert not [line for line in logged if password in line]
            async with httpx.AsyncClient() as client:
                me = await client.post(f"{url}/v1/auth/login",
                                       json={"name": "admin", "password": password})
                assert me.status_code == 200 and me.json()["role"] == "admin"
        async with serve_in_process(settings):  # users exist: nothing printed
            _, err = capfd.readouterr()
            assert "password:" not in err
    finally:
        structlog.reset_defaults()
