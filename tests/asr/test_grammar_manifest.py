"""Grammar scoring rules and the model manifest parser (pure functions, precise errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.asr.grammar import OUT_OF_LIST_FACTOR, Grammar, normalize_phrases, score_result
from app.asr.manifest import load_manifest
from app.settings import PROJECT_ROOT

MENU = Grammar(("예", "아니요", "잔액 조회"), with_unk=False)


def w(word: str, conf: float = 1.0) -> dict[str, object]:
    return {"word": word, "conf": conf, "start": 0.0, "end": 0.1}


def test_exactly_one_listed_phrase_keeps_its_confidence() -> None:
    score = score_result(MENU, [w("잔액", 0.9), w("조회", 0.8)])
    assert (score.text, score.confidence, score.matched) == ("잔액 조회", 0.8, True)


@pytest.mark.parametrize(
    "words",
    [
        [w("예"), w("아니요")],  # two phrases strung together: out-of-list speech
        [w("잔액")],  # a fragment of a phrase
        [w("예"), w("[unk]")],  # garbage word next to a phrase
    ],
)
def test_anything_else_is_pushed_under_the_threshold(words: list[dict[str, object]]) -> None:
    score = score_result(MENU, words)
    assert not score.matched
    assert score.confidence <= OUT_OF_LIST_FACTOR


def test_nothing_heard_is_no_match() -> None:
    assert score_result(MENU, []).confidence == 0.0


def test_grammar_json_keeps_non_ascii_and_adds_unk_when_supported() -> None:
    # Vosk does not decode \\uXXXX escapes: phrases must be sent as UTF-8 text
    assert MENU.to_json() == '["예", "아니요", "잔액 조회"]'
    assert json.loads(Grammar(("yes",), with_unk=True).to_json()) == ["yes", "[unk]"]


def test_phrases_are_normalized_and_empty_ones_refused() -> None:
    assert normalize_phrases([" 잔액   조회 ", "예", "예"]) == ["잔액 조회", "예"]
    with pytest.raises(ValueError, match="empty"):
        normalize_phrases(["예", "  "])
    with pytest.raises(ValueError, match="no phrases"):
        normalize_phrases([])


def test_project_manifest_lists_the_required_models() -> None:
    manifest = load_manifest(PROJECT_ROOT / "models" / "manifest.toml")
    for name in ("vosk-model-small-en-us-0.15", "vosk-model-small-cn-0.22",
                 "vosk-model-en-us-0.22", "vosk-model-cn-0.22"):
        entry = manifest[name]
        assert entry.url.endswith(f"/{name}.zip")
        assert entry.sample_rate_hz == 16_000 and entry.locale in ("en", "zh")
    assert manifest["vosk-model-small-en-us-0.15"].verified


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('[models."x"]\nurl = "ftp://a/x.zip"\nsample_rate_hz = 16000\nlocale = "en"\n',
         "models.x.url must be http(s)"),
        ('[models."x"]\nurl = "https://a/x.zip"\nsha256 = "abc"\nsample_rate_hz = 16000\n'
         'locale = "en"\n', "models.x.sha256 is not 64 hex digits"),
        ('[models."x"]\nurl = "https://a/x.zip"\nsample_rate_hz = 44100\nlocale = "en"\n',
         "models.x.sample_rate_hz must be 8000 or 16000"),
        ('[models."x"]\nurl = "https://a/x.zip"\nsample_rate_hz = 16000\n',
         "models.x lacks 'locale'"),
        ('[models."../x"]\nurl = "https://a/x.zip"\n', "invalid model name"),
        ("[models\n", "manifest"),
    ],
)
def test_bad_manifest_entries_raise_precise_errors(tmp_path: Path, body: str, error: str) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text(body)
    with pytest.raises(ValueError, match=error.replace(".", r"\.").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_manifest(path)
