"""The intents page on a real server with the real classifier and loader: examples added,
edited and removed through the API land in the catalog and on the page (a conflict is
refused with file:line, nothing written); the evaluation report matches ``evaluate`` on the
same files; model versions are activated and rolled back (the service serves the other
version); every change is audited; roles without ``intents:manage`` are refused.

The shipped intents and demo model (``models/intents``, trained only when it is missing or
stale, as ``tests/nlu`` does), copied per test; a second, older version is that model's
copy under an older version name (a re-training would cost a minute)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from app.auth import Role
from app.nlu.evaluate import evaluate, load_eval_files
from app.nlu.intents import load_intents
from app.nlu.pipeline import open_classifier, train_folder
from app.nlu.service import stale_reason
from app.nlu.store import POINTER, current_model_dir
from app.settings import PROJECT_ROOT, Settings
from app.sim.cli import serve_in_process
from tests.helpers.auth import ADMIN, sign_in_as_each_role
from tests.helpers.live import live_settings

# a held-out line that says a greeting but expects a goodbye: one sure confusion
CONFUSING = "en:\n  goodbye: [hello]\n"
OLDER = "20000101-000000-000000-older000"


@dataclass
class Served:
    url: str
    app: Any
    data: Path
    models: Path


def _settings(tmp: Path) -> Settings:
    return live_settings(tmp, asr_models={}, intents_dir=tmp / "intents",
                         intent_model_dir=tmp / "models")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An intents folder and its model folder: the trained version and an older copy."""
    tmp = tmp_path_factory.mktemp("intents_page")
    data, shipped, settings = tmp / "intents", PROJECT_ROOT / "models" / "intents", \
        _settings(tmp)
    shutil.copytree(PROJECT_ROOT / "intents", data)
    (data / "tests" / "confusing.yaml").write_text(CONFUSING, encoding="utf-8")
    folder = current_model_dir(shipped)
    if folder is not None and stale_reason(load_intents(data), shipped, settings) is None:
        shutil.copytree(folder, tmp / "models" / folder.name)
        (tmp / "models" / POINTER).write_text(folder.name + "\n", encoding="utf-8")
    else:
        train_folder(data, tmp / "models", settings)
    current = current_model_dir(tmp / "models")
    assert current is not None
    shutil.copytree(current, tmp / "models" / OLDER)
    manifest = json.loads((tmp / "models" / OLDER / "manifest.json").read_text("utf-8"))
    manifest.update(version=OLDER, created_at="2000-01-01T00:00:00+00:00")
    (tmp / "models" / OLDER / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    return tmp


@pytest_asyncio.fixture
async def served(trained: Path, tmp_path: Path) -> AsyncIterator[Served]:
    for name in ("intents", "models"):
        shutil.copytree(trained / name, tmp_path / name)
    async with serve_in_process(_settings(tmp_path)) as server:
        yield Served(server.url, server.app, tmp_path / "intents", tmp_path / "models")


async def _audit(client: httpx.AsyncClient, url: str, action: str) -> list[dict[str, Any]]:
    found = await client.get(f"{url}/v1/audit", headers=ADMIN, params={"action": action})
    items: list[dict[str, Any]] = found.json()["items"]
    return items


async def test_examples_are_added_edited_and_removed(served: Served) -> None:
    url, edits = served.url, served.data / "console_edits.yaml"
    new = {"intent": "greeting", "locale": "en", "text": "hello there my dear friend"}
    async with httpx.AsyncClient(timeout=60) as client:
        added = await client.post(f"{url}/v1/intents/examples", headers=ADMIN, json=new)
        assert added.status_code == 201, added.text
        catalog = load_intents(served.data)  # the real loader sees it
        assert new["text"] in catalog.intents["greeting"].examples["en"]
        page = (await client.get(f"{url}/console/intents", headers=ADMIN)).text
        assert 'data-text="hello there my dear friend"' in page  # with its edit/remove buttons

        saved = edits.read_text("utf-8")
        clash = await client.post(f"{url}/v1/intents/examples", headers=ADMIN, json={
            "intent": "greeting", "locale": "en", "text": "bye"})
        assert clash.status_code == 422, clash.text
        msg = clash.json()["detail"][0]["msg"]
        assert re.match(r"console_edits\.yaml:\d+: example 'bye' listed under two "
                        r"intents: 'greeting' and 'goodbye' \(conversation\.yaml:\d+\)",
                        msg), msg
        assert edits.read_text("utf-8") == saved  # nothing written

        shipped = await client.post(f"{url}/v1/intents/examples/remove", headers=ADMIN,
                                    json={**new, "text": "hi"})
        assert shipped.status_code == 409 and "conversation.yaml" in shipped.text, \
            shipped.text

        edited = await client.patch(f"{url}/v1/intents/examples", headers=ADMIN,
                                    json={**new, "new_text": "hello there my good friend"})
        assert edited.status_code == 200, edited.text
        examples = load_intents(served.data).intents["greeting"].examples["en"]
        assert "hello there my good friend" in examples
        assert "hello there my dear friend" not in examples

        removed = await client.post(f"{url}/v1/intents/examples/remove", headers=ADMIN,
                                    json={**new, "text": "hello there my good friend"})
        assert removed.status_code == 200, removed.text
        assert "hello there my good friend" not in load_intents(served.data).intents[
            "greeting"].examples["en"]
        page = (await client.get(f"{url}/console/intents", headers=ADMIN)).text
        assert "hello there my good friend" not in page and ">hi</span>" in page

        trail = {a["action"]: (a["before"], a["after"]) for action in (
            "intents.example.add", "intents.example.edit", "intents.example.remove")
            for a in await _audit(client, url, action)}
        assert trail == {
            "intents.example.add": (None, {"locale": "en", "text": "hello there my dear friend"}),
            "intents.example.edit": ({"locale": "en", "text": "hello there my dear friend"},
                                     {"locale": "en", "text": "hello there my good friend"}),
            "intents.example.remove": ({"locale": "en", "text": "hello there my good friend"},
                                       None)}


async def test_the_report_matches_evaluate(served: Served) -> None:
    heldout = load_eval_files(sorted((served.data / "tests").glob("*.yaml")))
    settings = served.app.state.settings
    ev = evaluate(open_classifier(served.models, settings), heldout)["en"]
    async with httpx.AsyncClient(timeout=120) as client:
        report = (await client.get(f"{served.url}/v1/intents/report", headers=ADMIN)).json()
        page = (await client.get(f"{served.url}/console/intents", headers=ADMIN)).text
    en = report["by_locale"]["en"]
    assert report["version"] == served.app.state.nlu.version
    assert en["metrics"] == ev.metrics()
    rows = {r["intent"]: r for r in en["intents"]}
    for intent in set(ev.gold):
        pairs = list(zip(ev.gold, ev.pred, strict=True))
        support = sum(g == intent for g, _ in pairs)
        hits = sum(g == p == intent for g, p in pairs)
        called = sum(p == intent for _, p in pairs)
        assert rows[intent]["support"] == support == len(heldout["en"][intent])
        assert rows[intent]["recall"] == round(hits / support, 4)
        assert rows[intent]["precision"] == (round(hits / called, 4) if called else 0.0)
        assert (f'<tr data-intent="{intent}"><td>{intent}</td>'
                f'<td>{rows[intent]["precision"]:.4f}</td>') in page
    assert ("goodbye", "greeting") in {(g, p) for g, p, _ in ev.confusions(1000)}
    labels = en["labels"]
    assert en["matrix"][labels.index("goodbye")][labels.index("greeting")] >= 1
    top = ev.confusions(5)
    for gold, pred, n in top:
        assert (f'<td data-gold="{gold}" data-pred="{pred}" class="top-confusion">{n}</td>'
                in page)
    for gold in en["labels"]:
        row = en["matrix"][en["labels"].index(gold)]
        assert sum(row) == sum(g == gold for g in ev.gold)


async def test_versions_are_activated_and_rolled_back(served: Served) -> None:
    url, models, nlu = served.url, served.models, served.app.state.nlu
    trained = nlu.version
    assert trained is not None and trained != OLDER
    broken = models / "19990101-000000-000000-broken00"
    shutil.copytree(models / OLDER, broken)
    for head in broken.glob("*.safetensors"):
        head.unlink()
    async with httpx.AsyncClient(timeout=120) as client:
        listed = (await client.get(f"{url}/v1/intents/models", headers=ADMIN)).json()
        assert [v["version"] for v in listed["versions"]] == [trained, OLDER, broken.name]
        assert [v["current"] for v in listed["versions"]] == [True, False, False]
        assert listed["versions"][0]["data_hash"] == load_intents(served.data).data_hash

        back = await client.post(f"{url}/v1/intents/models/rollback", headers=ADMIN)
        assert back.status_code == 200, back.text
        assert back.json() == {"current": OLDER, "previous": trained, "serving": OLDER}
        assert nlu.version == OLDER and current_model_dir(models) == models / OLDER
        listed = (await client.get(f"{url}/v1/intents/models", headers=ADMIN)).json()
        assert listed["serving"] == OLDER
        assert [v["current"] for v in listed["versions"]] == [False, True, False]

        refused = await client.post(f"{url}/v1/intents/models/{broken.name}/activate",
                                    headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert "cannot be served with these settings" in refused.text
        assert nlu.version == OLDER  # nothing changed

        again = await client.post(f"{url}/v1/intents/models/{trained}/activate",
                                  headers=ADMIN)
        assert again.status_code == 200 and nlu.version == trained, again.text

        roles = await sign_in_as_each_role(client, url)
        for role in (Role.SUPERVISOR, Role.AGENT, Role.DEVELOPER):
            who = roles[role]
            for method, path in (("POST", f"/v1/intents/models/{OLDER}/activate"),
                                 ("POST", "/v1/intents/models/rollback"),
                                 ("GET", "/v1/intents/report")):
                answer = await client.request(method, url + path, headers=who.headers,
                                              cookies=who.cookies)
                assert answer.status_code == 403, (role, path, answer.status_code)
        assert nlu.version == trained
        analyst = roles[Role.ANALYST]
        allowed = await client.post(f"{url}/v1/intents/models/rollback",
                                    headers=analyst.headers, cookies=analyst.cookies)
        assert allowed.status_code == 200 and nlu.version == OLDER, allowed.text

        trail = [(a["action"], a["before"], a["after"]) for action in (
            "intents.model.rollback", "intents.model.activate")
            for a in reversed(await _audit(client, url, action))]
    assert trail == [
        ("intents.model.rollback", {"version": trained}, {"version": OLDER}),
        ("intents.model.rollback", {"version": trained}, {"version": OLDER}),
        ("intents.model.activate", {"version": OLDER}, {"version": trained})]
