"""Flow files: bad input is rejected with file, line and a reason; good files load."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.flows.loader import (
    FlowError,
    check_file,
    check_files,
    flow_for_number,
    load_flow,
    load_flows,
)
from app.nlu.intents import load_intents
from app.settings import PROJECT_ROOT

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad"


@pytest.fixture(scope="module")
def known_intents() -> set[str]:
    return load_intents(PROJECT_ROOT / "intents").names()


@pytest.mark.parametrize(
    ("name", "line", "reason"),
    [
        ("yaml_error.yaml", 12, "YAML error: found unexpected end of stream (while scanning a "
                                "quoted scalar started on line 10)"),
        ("unknown_kind.yaml", 12, "unknown node kind 'dance' (one of say, menu, collect, answer,"
                                  " webhook, branch, transfer, hangup, voicemail, callback)"),
        ("missing_target.yaml", 11, "node 'a' goes to missing node 'nowhere'"),
        ("loop.yaml", 8, "cycle with no listening node (would loop forever): a -> b -> a"),
        ("bad_queue.yaml", 10, "transfer to undeclared queue 'vip' (general)"),
        ("missing_locale.yaml", 14, "prompt missing locale en"),
        ("unknown_intent.yaml", 13, "unknown intent 'order_stats' (not defined in intents/)"),
        ("dtmf_twice.yaml", 14, "DTMF key '1' used twice in menu 'm' (options 1 and 3)"),
        ("unreachable.yaml", 10, "node 'orphan' is unreachable"),
        ("duplicate_key.yaml", 10, "duplicate key 'a'"),
        ("bad_field.yaml", 13, "nodes.a.min_length: Input should be greater than or equal to 1"),
    ],
)
def test_bad_flow_is_rejected_with_file_line_and_reason(
    name: str, line: int, reason: str, known_intents: set[str]
) -> None:
    flow, errors = check_file(BAD / name, known_intents)
    assert flow is None
    assert [(e.line, e.reason) for e in errors] == [(line, reason)]
    assert str(errors[0]) == f"{BAD / name}:{line}: {reason}"
    with pytest.raises(FlowError) as exc:
        load_flow(BAD / name, known_intents)
    assert exc.value.line == line


def test_missing_field_and_unknown_field_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "f.yaml"
    f.write_text(
        "id: f\nlocales: [en]\ndefault_locale: en\nstart: a\nqueues: {q: {}}\n"
        "globals: {talk_to_agent: {queue: q}}\nnodes:\n  a:\n    kind: say\n"
        "    prompt: {en: hi}\n    colour: blue\n",
        encoding="utf-8",
    )
    _, errors = check_file(f)
    reasons = {(e.line, e.reason) for e in errors}
    assert (11, "unknown field 'nodes.a.colour'") in reasons
    assert (8, "missing field 'nodes.a.next'") in reasons


def test_good_flows_load(known_intents: set[str]) -> None:
    flows = load_flows(PROJECT_ROOT / "ivr_flows", known_intents)
    assert "demo_hotline" in flows
    demo = flows["demo_hotline"]
    assert demo.locales == ["zh", "en"]
    assert flow_for_number(flows, "400-800-1234") is demo
    assert flow_for_number(flows, "4009999999") is None
    small = load_flow(DATA / "small.yaml", known_intents)
    ko = load_flow(DATA / "ko_menu.yaml", known_intents)
    assert small.id == "small" and ko.locales == ["ko"]


def test_two_flows_on_one_number_are_rejected(tmp_path: Path) -> None:
    text = (DATA / "small.yaml").read_text(encoding="utf-8")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(text, encoding="utf-8")
    b.write_text(text.replace("id: small", "id: other"), encoding="utf-8")
    flows, errors = check_files([a, b])
    assert list(flows) == ["small"]
    assert [e.reason for e in errors] == [
        "hotline number 400-800-5555 is served by both 'small' and 'other'"
    ]
