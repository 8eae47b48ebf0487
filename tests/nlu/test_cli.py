"""`hotline intents ...` end to end on the session's trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.nlu.cli import intents_app
from app.settings import PROJECT_ROOT, Settings

HELDOUT = PROJECT_ROOT / "intents" / "tests"


@pytest.fixture
def env(nlu_settings: Settings, demo_model_root: Path) -> dict[str, str]:
    return {
        "HOTLINE_DATA_DIR": str(nlu_settings.data_dir),
        "HOTLINE_INTENT_MODEL_DIR": str(demo_model_root),
    }


def test_eval_json_has_the_documented_shape(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        intents_app, ["eval", "--test-file", str(HELDOUT / "heldout_zh.yaml"), "--test-file",
                      str(HELDOUT / "heldout_en.yaml"), "--json"], env=env,
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == {"by_locale", "overall", "noisy"}
    assert set(figures["by_locale"]) == {"zh", "en"}
    assert set(figures["noisy"]) == {"0.1"}  # the default: clean and 10% noise side by side
    noisy = figures["noisy"]["0.1"]
    for m in [*figures["by_locale"].values(), figures["overall"],
              *noisy["by_locale"].values(), noisy["overall"]]:
        assert set(m) == {"in_scope_accuracy", "oos_recall", "macro_f1", "n"}
        assert 0.0 <= m["in_scope_accuracy"] <= 1.0
    assert figures["overall"]["n"] == sum(m["n"] for m in figures["by_locale"].values())


def test_eval_report_writes_plots_per_locale(env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        intents_app, ["eval", "--test-file", str(HELDOUT / "heldout_en.yaml"),
                      "--report-dir", str(tmp_path / "report")], env=env,
    )
    assert result.exit_code == 0, result.output
    assert "worst confusions" in result.stdout
    assert {p.name for p in (tmp_path / "report").iterdir()} == {
        "confusion_en.png", "reliability_en.png"
    }


def test_test_command_fails_under_the_thresholds(env: dict[str, str]) -> None:
    ok = CliRunner().invoke(intents_app, ["test"], env=env)
    assert ok.exit_code == 0, ok.output
    strict = CliRunner().invoke(
        intents_app, ["test"], env={**env, "HOTLINE_INTENT_MIN_OOS_RECALL": "1.0",
                                    "HOTLINE_INTENT_MIN_ACCURACY": "1.0"},
    )
    assert strict.exit_code == 1
    assert "FAIL" in strict.output


def test_predict_prints_intent_and_answer(env: dict[str, str]) -> None:
    result = CliRunner().invoke(intents_app, ["predict", "请问你们周末几点开门", "--locale", "zh"],
                                env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["intent"]["intent"] == "business_hours"
    assert "营业时间" in shown["answer"]


def test_broken_data_folder_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("intents:\n  - name: x\n", encoding="utf-8")
    result = CliRunner().invoke(intents_app, ["train", "--data", str(tmp_path)], env=env)
    assert result.exit_code == 2
    assert "bad.yaml:2" in result.output


def test_noise_writes_a_seeded_copy_of_a_test_file(env: dict[str, str], tmp_path: Path) -> None:
    from app.nlu.evaluate import load_eval_file

    args = ["noise", "--locale", "zh", "--rate", "0.2", "--seed", "3"]
    first = CliRunner().invoke(intents_app, [*args, "--out", str(tmp_path / "a.yaml")], env=env)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(intents_app, args, env=env)
    assert again.exit_code == 0
    assert again.stdout == (tmp_path / "a.yaml").read_text(encoding="utf-8")
    assert "rate 0.2, seed 3" in again.stdout.splitlines()[0]
    clean = load_eval_file(HELDOUT / "heldout_zh.yaml")["zh"]
    noised = load_eval_file(tmp_path / "a.yaml")["zh"]
    assert {k: len(v) for k, v in noised.items()} == {k: len(v) for k, v in clean.items()}
    assert noised != clean
    bad = CliRunner().invoke(intents_app, ["noise", "--locale", "zh", "--rate", "2"], env=env)
    assert bad.exit_code == 2 and "--rate must be within [0, 1], got 2.0" in bad.output


def test_eval_reports_clean_and_noisy_side_by_side(env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        intents_app, ["eval", "--test-file", str(HELDOUT / "heldout_en.yaml"), "--noise", "0.05",
                      "--noise", "0.2", "--report-dir", str(tmp_path)], env=env,
    )
    assert result.exit_code == 0, result.output
    assert "clean" in result.stdout and "noise" in result.stdout
    as_json = CliRunner().invoke(
        intents_app, ["eval", "--test-file", str(HELDOUT / "heldout_en.yaml"), "--noise", "0.05",
                      "--noise", "0.2", "--json"], env=env,
    )
    figures = json.loads(as_json.stdout)
    assert set(figures["noisy"]) == {"0.05", "0.2"}
    noisy = figures["noisy"]["0.2"]["by_locale"]["en"]
    assert noisy["n"] == figures["by_locale"]["en"]["n"]
    assert noisy["in_scope_accuracy"] < figures["by_locale"]["en"]["in_scope_accuracy"]


def test_predict_json_always_has_an_answer_key(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        intents_app, ["predict", "what's the weather on mars", "--locale", "en", "--json"],
        env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["intent"]["intent"] is None and shown["answer"] is None


def test_predict_in_an_untrained_locale_is_refused(env: dict[str, str]) -> None:
    result = CliRunner().invoke(intents_app, ["predict", "bonjour", "--locale", "fr"], env=env)
    assert result.exit_code == 2
    assert "--locale 'fr': the intent model knows en, zh" in result.output


def test_predict_refuses_a_stale_model_instead_of_retraining(
    env: dict[str, str], tmp_path: Path, demo_model_root: Path,
) -> None:
    data = tmp_path / "intents"
    shutil.copytree(PROJECT_ROOT / "intents", data)
    orders = data / "orders.yaml"
    orders.write_text(orders.read_text(encoding="utf-8").replace(
        "      en:\n", "      en:\n        - where on earth is my parcel\n", 1), encoding="utf-8")
    before = sorted(p.name for p in demo_model_root.iterdir())
    result = CliRunner().invoke(intents_app, ["predict", "hello", "--locale", "en", "--data",
                                              str(data)], env=env)
    assert result.exit_code == 1
    assert "train it first: hotline intents train" in " ".join(result.output.split())
    assert sorted(p.name for p in demo_model_root.iterdir()) == before  # nothing trained


def test_eval_json_with_report_dir_writes_the_reports(
    env: dict[str, str], tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        intents_app, ["eval", "--test-file", str(HELDOUT / "heldout_en.yaml"), "--json",
                      "--report-dir", str(tmp_path / "r")], env=env)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert sorted(Path(p).name for p in figures["reports"]) == [
        "confusion_en.png", "reliability_en.png"]
    assert all(Path(p).is_file() for p in figures["reports"])
