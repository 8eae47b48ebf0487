"""The intent inbox on a real server: what callers said that the classifier refused or was
unsure of appears; an analyst's label becomes a training example that the same loader as
``hotline intents`` reads; bad labels are refused with the reason; each label is audited."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.auth import Role
from app.nlu.intents import load_intents
from app.reports.inbox import LABELS_FILE, Label, LabelStore
from app.settings import PROJECT_ROOT
from tests.console.conftest import YESTERDAY, Console
from tests.helpers.auth import ADMIN

CALL = YESTERDAY + "c2"


def items(console: Console) -> list[dict[str, Any]]:
    got = httpx.get(f"{console.url}/v1/inbox", timeout=60,
                    cookies=console.roles[Role.ANALYST].cookies)
    assert got.status_code == 200, got.text
    return [i for i in got.json() if i["call_id"] == CALL]


def label(console: Console, seq: int, name: str) -> httpx.Response:
    analyst = console.roles[Role.ANALYST]
    return httpx.post(f"{console.url}/v1/inbox/labels", cookies=analyst.cookies,
                      headers=analyst.headers, timeout=60,
                      json={"call_id": CALL, "seq": seq, "label": name})


def test_label_an_utterance(console: Console) -> None:
    found = items(console)
    # c2: refused (0.2), then unsure (return_exchange 0.45); c1's 0.9 is not asked about
    assert {(i["text"], i["guess"]) for i in found} == {("我要退货啊", None),
                                                        ("退货", "refund")}
    refused = next(i for i in found if i["guess"] is None)
    saved = label(console, refused["seq"], "return_exchange")
    assert saved.status_code == 201, saved.text
    assert saved.json()["locale"] == "zh"
    catalog = load_intents(console.intents)  # the loader of `hotline intents` reads it
    assert "我要退货啊" in catalog.intents["return_exchange"].examples["zh"]
    assert "more_examples" in (console.intents / LABELS_FILE).read_text(encoding="utf-8")
    left = items(console)
    assert [i["text"] for i in left] == ["退货"]
    unknown = label(console, left[0]["seq"], "refund_everything")
    assert unknown.status_code == 422 and "unknown intent" in unknown.text
    not_intent = label(console, 1, "refund_request")
    assert not_intent.status_code == 404 and "not an intent event" in not_intent.text
    again = label(console, left[0]["seq"], "out_of_scope")
    assert again.status_code == 201
    assert "退货" in load_intents(console.intents).out_of_scope["zh"]
    assert items(console) == []
    agent = console.roles[Role.AGENT]
    refused_role = httpx.post(f"{console.url}/v1/inbox/labels", cookies=agent.cookies,
                              headers=agent.headers, timeout=60,
                              json={"call_id": CALL, "seq": 2, "label": "out_of_scope"})
    assert refused_role.status_code == 403
    audit = httpx.get(f"{console.url}/v1/audit", headers=ADMIN, params={"limit": 500},
                      timeout=60).json()["items"]
    labels = [e for e in audit if e["action"] == "intents.label"
              and e["target"].startswith(f"call:{CALL}#")]
    assert {e["after"]["label"] for e in labels} == {"return_exchange", "out_of_scope"}
    assert all(e["actor"] == "test-analyst" for e in labels)


def test_retrain_needs_a_serving_model(console: Console) -> None:
    analyst = console.roles[Role.ANALYST]
    got = httpx.post(f"{console.url}/v1/inbox/retrain", cookies=analyst.cookies,
                     headers=analyst.headers, timeout=60, json={"reason": "test"})
    assert got.status_code == 503 and "no serving model" in got.text


def test_label_store_merges_and_refuses_conflicts(tmp_path: Path) -> None:
    intents = tmp_path / "intents"
    shutil.copytree(PROJECT_ROOT / "intents", intents)
    store = LabelStore(intents, tmp_path / "labels.json")

    def make(call_id: str, name: str) -> Label:
        return Label(call_id=call_id, seq=3, text="我那个东西坏了想换", locale="zh",
                     label=name, by="ana", at="2026-11-30T00:00:00+00:00")

    store.add(make("a", "return_exchange"))
    store.add(make("b", "return_exchange"))  # the same words from another call: one example
    examples = load_intents(intents).intents["return_exchange"].examples["zh"]
    assert examples.count("我那个东西坏了想换") == 1
    assert store.done() == {("a", 3), ("b", 3)}
    with pytest.raises(ValueError, match=r"inbox_labels.yaml:\d+: example '我那个东西坏了想换' "
                                         r"listed under two intents"):
        store.add(make("c", "complaint"))
    assert store.done() == {("a", 3), ("b", 3)}  # refused: nothing written


def test_more_examples_of_an_unknown_intent_is_refused_with_its_line(tmp_path: Path) -> None:
    from app.nlu.intents import IntentFileError

    intents = tmp_path / "intents"
    shutil.copytree(PROJECT_ROOT / "intents", intents)
    (intents / LABELS_FILE).write_text(
        "domain: inbox\nmore_examples:\n  order_status:\n    zh: [我的货呢到底]\n"
        "  refund_everything:\n    zh: [全部退掉]\n", encoding="utf-8")
    with pytest.raises(IntentFileError) as refused:
        load_intents(intents)
    assert (refused.value.file.name, refused.value.line) == (LABELS_FILE, 5)
    assert refused.value.reason == "more_examples of unknown intent 'refund_everything'"
