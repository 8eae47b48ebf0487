"""Intent files: schema errors name file, line and reason; the demo data is complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.nlu.intents import IntentFileError, load_intents
from app.settings import PROJECT_ROOT

DEMO_INTENTS = PROJECT_ROOT / "intents"
DEMO_NAMES = {
    "order_status", "refund_request", "return_exchange", "repair_service", "product_inquiry",
    "business_hours", "store_location", "invoice_request", "complaint", "talk_to_agent",
    "account_password", "payment_issue", "delivery_change", "cancel_order", "warranty_policy",
    "greeting", "goodbye", "affirm", "deny",
}

GOOD = """\
domain: shop
slots: {hours: 9 to 5}
intents:
  - name: hours
    examples:
      en: [when are you open, opening times]
      zh: [几点开门]
    answer:
      en: We are open {hours} in {city}
  - name: yes_no
    examples:
      en:
        - yes
        - no
"""


def write(tmp_path: Path, text: str, name: str = "shop.yaml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


def test_demo_data_has_every_intent_with_enough_examples_per_locale() -> None:
    catalog = load_intents(DEMO_INTENTS)
    assert catalog.names() == DEMO_NAMES
    for intent in catalog.intents.values():
        for locale in ("zh", "en"):
            assert len(intent.examples[locale]) >= 25, (intent.name, locale)
    assert catalog.answer("business_hours", "zh")
    assert catalog.answer("warranty_policy", "en-US")
    assert catalog.answer("affirm", "fr") is None


def test_heldout_files_share_no_utterance_with_training_data() -> None:
    from app.nlu.evaluate import load_eval_files
    from app.nlu.text import canonical_example

    catalog = load_intents(DEMO_INTENTS)
    heldout = load_eval_files(sorted((DEMO_INTENTS / "tests").glob("*.yaml")))
    trained = {
        (loc, canonical_example(t)) for loc in catalog.locales() for t, _ in catalog.examples(loc)
    } | {(loc, canonical_example(t)) for loc, ts in catalog.out_of_scope.items() for t in ts}
    overlap = [
        (loc, t) for loc, intents in heldout.items() for ts in intents.values() for t in ts
        if (loc, canonical_example(t)) in trained
    ]
    assert overlap == []
    assert set(heldout) == {"zh", "en"}
    for intents in heldout.values():
        assert set(intents) == DEMO_NAMES | {"out_of_scope"}


def test_answers_fill_slots_and_survive_missing_ones(tmp_path: Path) -> None:
    catalog = load_intents(write(tmp_path, GOOD).parent)
    assert catalog.render_answer("hours", "en", {"city": "Beijing"}) == (
        "We are open 9 to 5 in Beijing"
    )
    assert catalog.render_answer("hours", "en", {}) == "We are open 9 to 5 in"
    assert catalog.render_answer("hours", "zh", {}) is None
    assert catalog.render_answer("nope", "en", {}) is None


def test_yes_and_no_stay_text_not_booleans(tmp_path: Path) -> None:
    catalog = load_intents(write(tmp_path, GOOD).parent)
    assert catalog.intents["yes_no"].examples["en"] == ["yes", "no"]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (GOOD.replace("  - name: yes_no", "  - name: hours"), 10, "duplicated intent name 'hours'"),
        (GOOD.replace("        - no\n", "        - When are you open\n"), 14,
         "listed under two intents: 'yes_no' and 'hours'"),
        (GOOD.replace("      en:\n        - yes\n        - no\n", "      en: []\n"), 12,
         "intent has no examples"),
        (GOOD.replace("name: yes_no", "name: Yes No"), 10, "snake_case"),
        (GOOD.replace("  - name: yes_no\n", "  - name: yes_no\n    colour: red\n"), 11,
         "Extra inputs are not permitted"),
        (GOOD.replace("      zh: [几点开门]", "      zh: [几点开门\n"), 9, "invalid YAML"),
        (GOOD.replace("    answer:", "    examples: {}\n    answer:"), 8, "duplicated key"),
        (GOOD.replace("      zh: [几点开门]", "      chinese: [几点开门]"), 7, "locale must be"),
    ],
)
def test_bad_files_name_file_line_and_reason(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(IntentFileError) as caught:
        load_intents(tmp_path)
    assert caught.value.file == path
    assert caught.value.line == line, str(caught.value)
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_duplicate_intent_across_files_names_both(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, "intents:\n  - name: hours\n    examples: {en: [open late]}\n", "b.yaml")
    with pytest.raises(IntentFileError, match=r"b\.yaml:2: duplicated intent name 'hours' "
                       r"\(first defined at .*a\.yaml:4\)"):
        load_intents(tmp_path)


def test_empty_or_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IntentFileError, match="no intent files"):
        load_intents(tmp_path)
    with pytest.raises(IntentFileError, match="not found"):
        load_intents(tmp_path / "missing")
