"""Routing files: the demo loads; every kind of mistake is reported with file, line, reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from app.routing.loader import RoutingFileError, check_file, check_text, dump_yaml, load_file
from tests.helpers.routing import DEMO

GOOD = """\
version: 1
calendars:
  office: {timezone: Asia/Shanghai, hours: {mon: ["09:00-18:00"]}}
agents:
  li.na: {name: 李娜, languages: [zh], skills: {general: 5}}
  bob: {name: Bob, languages: [en], devices: [{kind: phone, number: "13800138000"}]}
groups:
  zh: {strategy: longest_idle, members: [li.na], calendar: office, overflow: {group: en}}
  en: {members: [bob], overflow: voicemail}
hotlines:
  - number: "4008001234"
    rules:
      - {name: english, when: {locale: en}, target: {group: en}}
      - {name: beijing, when: {province: 北京}, target: {group: zh}}
"""


def problems(text: str) -> list[tuple[int, str]]:
    config, errors = check_text(textwrap.dedent(text), Path("routing.yaml"))
    assert (config is None) == bool(errors)
    return [(e.line, e.reason) for e in errors]


def test_the_demo_routing_file_is_valid_and_complete() -> None:
    config = load_file(DEMO)
    assert {"zh_service", "en_service", "beijing", "senior"} <= set(config.groups)
    phone_bound = [a for a in config.agents.values()
                   if any(d.kind == "phone" for d in a.devices)]
    assert phone_bound and phone_bound[0].devices[0].number == "+8613800138000"
    assert config.hotlines[0].number == "4008001234"
    assert config.hotlines[0].flow == "demo_hotline"


def test_a_good_file_loads_and_normalizes_phone_numbers() -> None:
    config, errors = check_text(GOOD, Path("good.yaml"))
    assert errors == [] and config is not None
    assert config.agents["bob"].devices[0].number == "+8613800138000"
    assert config.groups["en"].overflow is not None and config.groups["en"].overflow.voicemail


def test_export_reads_back_to_the_same_configuration() -> None:
    config = load_file(DEMO)
    again, errors = check_text(dump_yaml(config), Path("export.yaml"))
    assert errors == [] and again == config


@pytest.mark.parametrize(("text", "line", "reason"), [
    (GOOD.replace("members: [bob]", "members: [bob, carol]"), 9,
     "group 'en': unknown agent 'carol'"),
    (GOOD.replace("overflow: voicemail", "overflow: {group: zh}"), 9,
     "overflow cycle: zh -> en -> zh"),
    (GOOD.replace("province: 北京", "province: 北亰"), 14,
     "hotlines.0.rules.1.when.province: unknown province '北亰' (e.g. 北京, 广东, Guangdong)"),
    (GOOD.replace("{group: en}}\n      - {name: beijing", "{group: nowhere}}\n      - {name: b"),
     13, "unknown group 'nowhere' (groups: en, zh)"),
    (GOOD.replace('number: "4008001234"', "number: 4008001234"), 11,
     'hotlines.0.number: quote the hotline number: "4008001234" (a YAML number loses '
     "leading zeros)"),
    (GOOD.replace('"13800138000"', '"12345"'), 6,
     "agents.bob.devices.0.number: phone device number '12345' is not a valid phone number"),
    (GOOD.replace("strategy: longest_idle", "strategy: fastest"), 8,
     "groups.zh.strategy: Input should be 'sequential', 'ring_all', 'random', 'round_robin', "
     "'weighted_random', 'longest_idle', 'fewest_calls', 'least_talk_time' or 'skills_based'"),
    (GOOD.replace("calendar: office", "calendar: night"), 8, "unknown calendar 'night'"),
    (GOOD.replace("skills: {general: 5}", "skills: {general: 11}"), 5,
     "agents.li.na.skills: skill 'general' level must be 1..10, got 11"),
    (GOOD.replace("{name: beijing,", "{name: english,"), 14, "rule name 'english' used twice"),
    (GOOD.replace("when: {locale: en}", "when: {locale: en, colour: red}"), 13,
     "unknown field 'hotlines.0.rules.0.when.colour'"),
    (GOOD.replace("target: {group: en}", "target: {group: en, voicemail: true}"), 13,
     "hotlines.0.rules.0.target: a target is exactly one of group, agent, "
     "number, voicemail, callback, split (got group, voicemail)"),
    (GOOD + "      - {name: split, target: {split: [{group: en, percent: 60}, "
     "{group: zh, percent: 30}]}}\n", 15,
     "hotlines.0.rules.2.target: split percentages add up to 90, not 100"),
    (GOOD.replace("  en: {members", "  zh: {members"), 9, "duplicate key 'zh'"),
    (GOOD.replace("version: 1", "version: 2"), 1, "version: Input should be 1"),
    (GOOD.replace("en: {members: [bob]", "en: {callback_expire_after_s: 0, members: [bob]"), 9,
     "groups.en.callback_expire_after_s: Input should be greater than 0"),
    (GOOD.replace("en: {members: [bob]", "en: {callback_expire_after_s: 1 day, members: [bob]"),
     9, "groups.en.callback_expire_after_s: Input should be a valid number, unable to parse "
     "string as a number"),
    (GOOD.replace("en: {members: [bob]", "en: {callback_expire_after_s: 999999, members: [bob]"),
     9, "groups.en.callback_expire_after_s: Input should be less than or equal to 604800"),
])
def test_mistakes_are_reported_with_their_line(text: str, line: int, reason: str) -> None:
    assert (line, reason) in problems(text)


def test_yaml_syntax_empty_and_non_mapping_files() -> None:
    assert problems("agents: {li.na: [\n") == [
        (2, "YAML error: expected the node content, but found '<stream end>' "
            "(while parsing a flow node started on line 2)")]
    assert problems("") == [(1, "a routing file is empty")]
    assert problems("- a\n- b\n") == [(1, "a routing file must be a mapping of keys to values")]


def test_every_problem_of_a_file_is_listed_in_line_order() -> None:
    text = GOOD.replace("members: [bob]", "members: [bob, carol]").replace(
        "calendar: office", "calendar: night")
    assert [line for line, _ in problems(text)] == [8, 9]


def test_unknown_intents_are_rejected_when_the_catalog_is_known(tmp_path: Path) -> None:
    text = GOOD.replace("when: {locale: en}", "when: {intent: [complaint, teleport]}")
    _, errors = check_text(text, Path("r.yaml"), known_intents={"complaint"})
    assert [(e.line, e.reason) for e in errors] == [
        (13, "unknown intent 'teleport' (not defined in intents/)")]


def test_a_file_that_cannot_be_read_and_load_file_raising(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    _, errors = check_file(missing)
    assert errors[0].line == 1 and errors[0].reason.startswith("cannot read:")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("members: [li.na]", "members: [nobody]"), encoding="utf-8")
    with pytest.raises(RoutingFileError) as info:
        load_file(bad)
    assert str(info.value) == f"{bad}:8: group 'zh': unknown agent 'nobody'"
    assert isinstance(info.value, ValueError)
