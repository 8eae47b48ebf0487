"""A newcomer's first hour (issue 14): every reproduction gives a short, actionable message
and the right exit code (2 bad input, 1 environment), naming the variable, file or line.

Run through the real ``hotline`` command group (typer's runner: the same error path as the
installed command), with broken copies of the demo flow, intents and settings.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.settings import PROJECT_ROOT

FLOWS = PROJECT_ROOT / "ivr_flows"
INTENTS = PROJECT_ROOT / "intents"
MAX_LINES = 4  # "one or a few lines"


@dataclass
class Case:
    name: str
    args: list[str]
    code: int
    says: list[str]  # substrings of the output, in any order
    env: dict[str, str] | None = None
    setup: Callable[[Path], None] | None = None


def broken_flow(root: Path) -> None:
    """A copy of the demo flows with two mistakes: a missing target and a duplicate key."""
    (root / "flows").mkdir()
    text = (FLOWS / "demo_hotline.yaml").read_text(encoding="utf-8")
    text = text.replace("next: hours_check}", "next: hours_chek}", 1)
    text = text.replace('{dtmf: "5", intents: [complaint]', '{dtmf: "4", intents: [complaint]')
    (root / "flows" / "demo_hotline.yaml").write_text(text, encoding="utf-8")


def menu_key_zero(root: Path) -> None:
    (root / "flows").mkdir()
    text = (FLOWS / "demo_hotline.yaml").read_text(encoding="utf-8")
    text = text.replace('{dtmf: "5", intents: [complaint]', '{dtmf: "0", intents: [complaint]')
    (root / "flows" / "demo_hotline.yaml").write_text(text, encoding="utf-8")


def intents_with(root: Path, old: str, new: str) -> None:
    shutil.copytree(INTENTS, root / "intents")
    path = root / "intents" / "orders.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def config(text: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / "hotline.yaml").write_text(text, encoding="utf-8")
    return write


def flows_env(root: Path) -> dict[str, str]:
    return {"HOTLINE_FLOWS_DIR": str(root / "flows")}


CASES = [
    Case("flows test on a broken flow lists every problem",
         ["flows", "test"], 2, ["demo_hotline.yaml:", "missing node 'hours_chek'",
                                "DTMF key '4' used twice in menu 'main_menu' (options 4 and 5)"],
         env={"HOTLINE_FLOWS_DIR": "{root}/flows"}, setup=broken_flow),
    Case("flows chat on a broken flow", ["flows", "chat", "demo_hotline", "--no-nlu"], 2,
         ["missing node 'hours_chek'", "used twice"], env={"HOTLINE_FLOWS_DIR": "{root}/flows"},
         setup=broken_flow),
    Case("flows graph on a broken flow", ["flows", "graph", "demo_hotline", "-o", "{root}/g.mmd"],
         2, ["missing node 'hours_chek'", "used twice"],
         env={"HOTLINE_FLOWS_DIR": "{root}/flows"}, setup=broken_flow),
    Case("flows check: a menu option on the agent key", ["flows", "check"], 1,
         ["demo_hotline.yaml:", "key '0' hides the agent key (globals.agent_key)"],
         env={"HOTLINE_FLOWS_DIR": "{root}/flows"}, setup=menu_key_zero),
    Case("flows check: the flows folder does not exist", ["flows", "check"], 2,
         ["flows folder not found: ", "HOTLINE_FLOWS_DIR"],
         env={"HOTLINE_FLOWS_DIR": "{root}/nowhere"}),
    Case("flows check: the intents folder is broken", ["flows", "check"], 2,
         ["intents not loaded", "orders.yaml:"], env={"HOTLINE_INTENTS_DIR": "{root}/intents"},
         setup=lambda r: intents_with(r, "\n    examples:\n", "\n    exampels:\n")),
    Case("flows chat in a locale the flow does not speak",
         ["flows", "chat", "demo_hotline", "--locale", "fr", "--no-nlu"], 2,
         ["--locale 'fr': flow 'demo_hotline' speaks zh, en"]),
    Case("intents: a misspelled locale key trains a one-class model",
         ["intents", "train", "--data", "{root}/intents", "--model", "{root}/m"], 2,
         ["orders.yaml:", "locale 'fr' has examples for one intent only"],
         setup=lambda r: intents_with(r, "      en:\n", "      fr:\n")),
    Case("intents: a number as an example",
         ["intents", "train", "--data", "{root}/intents", "--model", "{root}/m"], 2,
         ["orders.yaml:", "example '12345' has no words"],
         setup=lambda r: intents_with(r, "      en:\n", "      en:\n        - 12345\n")),
    Case("serve: HOTLINE_PORT is not a number", ["serve"], 2,
         ["HOTLINE_PORT='abc': Input should be a valid integer"], env={"HOTLINE_PORT": "abc"}),
    Case("serve: misspelled key in the YAML file", ["serve", "--config", "{root}/hotline.yaml"],
         2, ["hotline.yaml:2: unknown setting 'intent_treshold' (did you mean "
             "'intent_threshold'?)"], setup=config("port: 9000\nintent_treshold: 0.9\n")),
    Case("serve: YAML syntax error", ["serve", "--config", "{root}/hotline.yaml"], 2,
         ["hotline.yaml:3: YAML syntax error"], setup=config("port: 9000\nasr_models: {zh: x\n")),
    Case("serve: value out of range in the YAML file",
         ["serve", "--config", "{root}/hotline.yaml"], 2,
         ["hotline.yaml:1: intent_threshold: Input should be less than or equal to 1 (got 2)"],
         setup=config("intent_threshold: 2\n")),
    Case("serve: --config names no file", ["serve", "--config", "{root}/nope.yaml"], 2,
         ["settings file not found: ", "nope.yaml (from --config)"]),
    Case("serve: HOTLINE_CONFIG names no file", ["serve"], 2,
         ["nope.yaml (from HOTLINE_CONFIG)"], env={"HOTLINE_CONFIG": "{root}/nope.yaml"}),
    Case("a misspelled HOTLINE_ variable is refused", ["flows", "check"], 2,
         ["HOTLINE_INTENT_TRESHOLD is not a setting (did you mean HOTLINE_INTENT_THRESHOLD?)"],
         env={"HOTLINE_INTENT_TRESHOLD": "0.9"}),
    Case("an unrelated HOTLINE_ variable is a warning", ["flows", "check"], 0,
         ["warning: environment variable HOTLINE_MY_NOTES is not a Hotline setting", "ok: 1"],
         env={"HOTLINE_MY_NOTES": "x"}),
    Case("a dict setting that is not JSON", ["flows", "check"], 2,
         ["HOTLINE_ASR_MODELS='zh=x': not valid JSON"], env={"HOTLINE_ASR_MODELS": "zh=x"}),
    Case("serve: database on a closed port", ["serve", "--port", "{free_port}"], 1,
         ["cannot migrate the database", "HOTLINE_DATABASE_URL"],
         env={"HOTLINE_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:{closed_port}/x"}),
    Case("serve: the port is taken (found before any model loads)",
         ["serve", "--port", "{busy_port}"], 1,
         ["port {busy_port} on 127.0.0.1 is already in use"]),
    Case("transcribe a folder", ["transcribe", "{root}"], 2, ["is a folder; give one WAV file"]),
    Case("say in a locale without a voice", ["say", "bonjour", "--locale", "fr", "-o",
                                             "{root}/x.wav"], 2, ["no voice for locale 'fr'"]),
]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reproduction_gives_a_short_clear_message(
    case: Case, tmp_path: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in [v for v in __import__("os").environ if v.startswith("HOTLINE_")]:
        monkeypatch.delenv(var)
    if case.setup is not None:
        case.setup(tmp_path)
    values = {"root": str(tmp_path), "busy_port": str(busy_port),
              "free_port": str(free_port()), "closed_port": str(free_port())}
    args = [a.format(**values) for a in case.args]
    env = {"HOTLINE_DATA_DIR": str(tmp_path / "data")}
    env.update({k: v.format(**values) for k, v in (case.env or {}).items()})
    result = CliRunner().invoke(app, args, env=env)
    output = result.output
    assert result.exit_code == case.code, output
    assert "Traceback" not in output
    for text in case.says:
        assert text.format(**values) in output, output
    if case.code != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        assert 0 < len(lines) <= MAX_LINES, output
        assert all(len(line) < 400 for line in lines), output


def test_models_list_piped_never_breaks_a_word() -> None:
    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "UNVERIFIED" in result.output and "UNVERIFI\n" not in result.output
    assert "vosk-model-small-en-us-0.15" in result.output


def test_one_line_errors_reach_a_pipe_whole() -> None:
    """The installed entry point, piped: the message and the exit code, no traceback."""
    env = {"PATH": "/usr/bin:/bin", "HOTLINE_PORT": "abc", "HOME": str(Path.home())}
    result = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "python"), "-m", "app.cli", "serve"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: HOTLINE_PORT='abc': Input should be a valid integer, unable to parse string as "
        "an integer"]
