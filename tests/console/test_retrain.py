"""Retraining from the inbox, on a real server with the real classifier and a small intents
folder: labels become examples; a model trained with good labels is activated (and served);
one trained with labels that contradict the held-out files is kept as a candidate with the
reason and the figures, and the serving model stays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from app.nlu.pipeline import train_folder
from app.nlu.store import current_model_dir
from app.sim.cli import serve_in_process
from app.storage import CallRepository
from tests.helpers.auth import ADMIN
from tests.helpers.live import live_settings

DATA = """domain: shop
intents:
  - name: order_status
    examples:
      en: [where is my order, track my parcel, has my package shipped, delivery status please]
  - name: business_hours
    examples:
      en: [when are you open, opening hours, what time do you close, are you open on sunday]
  - name: talk_to_agent
    examples:
      en: [let me talk to a person, human please, connect me to an agent, i want a real person]
out_of_scope:
  en: [what is the weather like, tell me a joke, who won the game]
"""
HELDOUT = """en:
  order_status: [where is my parcel now, is my order on its way]
  business_hours: [what are your opening hours, until what time are you open]
  talk_to_agent: [put me through to a human, i need to speak to a person]
  out_of_scope: [how is the weather today, tell me something funny]
"""
GOOD = {"where is my stuff": "order_status"}
# the held-out order questions, taught as opening-hours questions
POISON = {text: "business_hours" for text in (
    "where is my parcel now", "is my order on its way", "where is my order now",
    "is my parcel on its way", "where is my package now")}


def call_saying(repo: CallRepository, call_id: str, text: str, at: datetime) -> None:
    """A call in which the caller said ``text`` and the classifier found nothing."""
    repo.start_call(call_id, "4000000001", "13800138000", "sip", "en", at, "main")
    repo.append_events(call_id, [
        ({"type": "transcript", "text": text, "is_final": True, "confidence": 0.9}, at),
        ({"type": "intent", "intent": None, "confidence": 0.1}, at)])
    repo.end_call(call_id, "completed", at + timedelta(seconds=20))


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Any, Path]]:
    data, models = tmp_path / "intents", tmp_path / "models"
    (data / "tests").mkdir(parents=True)
    (data / "shop.yaml").write_text(DATA, encoding="utf-8")
    (data / "tests" / "heldout_en.yaml").write_text(HELDOUT, encoding="utf-8")
    settings = live_settings(tmp_path, asr_models={}, intents_dir=data,
                             intent_model_dir=models, intent_min_accuracy=0.5,
                             intent_min_oos_recall=0.0)
    await asyncio.to_thread(train_folder, data, models, settings)  # the serving model
    async with serve_in_process(settings) as server:
        yield server.url, server.app, models


async def label_all(client: httpx.AsyncClient, url: str, repo: CallRepository,
                    labels: dict[str, str], prefix: str) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    for n, text in enumerate(labels):
        await asyncio.to_thread(call_saying, repo, f"{prefix}{n}", text, now)
    items = (await client.get(f"{url}/v1/inbox", headers=ADMIN)).json()
    for item in items:
        if item["call_id"].startswith(prefix):
            saved = await client.post(f"{url}/v1/inbox/labels", headers=ADMIN, json={
                "call_id": item["call_id"], "seq": item["seq"], "label": labels[item["text"]]})
            assert saved.status_code == 201, saved.text


async def retrain(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """Start a retraining and follow its progress through the status until it ends: the
    percent never goes back, from 0 at the start to 100 at the end."""
    started = await client.post(f"{url}/v1/inbox/retrain", headers=ADMIN,
                                json={"reason": "new labels"})
    assert started.status_code == 202, started.text
    assert started.json()["progress"]["percent"] == 0
    again = await client.post(f"{url}/v1/inbox/retrain", headers=ADMIN,
                              json={"reason": "twice"})
    assert again.status_code == 409
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 600
    seen: list[dict[str, Any]] = []
    while loop.time() < deadline:
        job: dict[str, Any] = (await client.get(f"{url}/v1/inbox/retrain",
                                                headers=ADMIN)).json()
        seen.append(job["progress"])
        if job["state"] != "running":
            check_progress(seen)
            return job
        await asyncio.sleep(0.2)  # the console page polls too; the end is the condition
    raise AssertionError("retraining did not finish in 600 s")


def check_progress(seen: list[dict[str, Any]]) -> None:
    percents = [p["percent"] for p in seen]
    assert percents == sorted(percents), percents
    assert all(0 <= p < 100 for p in percents[:-1]) and percents[-1] == 100, percents
    for p in seen:
        assert 0 <= p["step"] <= p["total"] or p["total"] == 0, p
        assert p["phase_index"] <= p["phases"], p
    last = seen[-1]
    phases = [d["phase"] for d in last["done"]]
    # the real training's phases, each run to its total: embedding, the English heads
    # (epochs of every fold and the final fit), the evaluation of both models
    assert phases[0] == "embedding examples" and phases[-1].startswith("evaluating"), phases
    training = [d for d in last["done"] if d["phase"].startswith("training en")]
    assert len(training) == 1 and training[0]["total"] >= 30, last["done"]
    assert last["done"][-1]["total"] == 2 and last["phases"] == len(phases) == 3


async def test_retrain_is_gated_on_the_held_out_files(
        served: tuple[str, Any, Path]) -> None:
    url, app, models = served
    serving = current_model_dir(models)
    assert serving is not None
    async with httpx.AsyncClient(timeout=60) as client:
        await label_all(client, url, app.state.repo, GOOD, "good")
        good = await retrain(client, url)
        assert good["state"] == "activated", good
        assert good["result"]["current_version"] == serving.name
        figures = good["result"]["figures"]["en"]["in_scope_accuracy"]
        assert figures["candidate"] >= figures["current"]
        activated = current_model_dir(models)
        assert activated is not None and activated.name == good["result"]["candidate"]
        assert app.state.nlu.version == activated.name  # the server serves it now
        assert app.state.nlu.predict("where is my stuff", "en").intent == "order_status"
        page = await client.get(f"{url}/console/inbox", headers=ADMIN)
        assert '<progress id="training-progress" max="100" value="100.0">' in page.text

        await label_all(client, url, app.state.repo, POISON, "poison")
        bad = await retrain(client, url)
        assert bad["state"] == "kept", bad
        reason = bad["result"]["reason"]
        assert "en in_scope_accuracy" in reason and "< current" in reason
        worse = bad["result"]["figures"]["en"]["in_scope_accuracy"]
        assert worse["candidate"] < worse["current"]
        assert "kept as a candidate" in bad["summary"]
        assert current_model_dir(models) == activated  # the good model is still served
        assert app.state.nlu.version == activated.name
        audit = (await client.get(f"{url}/v1/audit", headers=ADMIN,
                                  params={"action": "intents.retrain"})).json()["items"]
        assert [e["after"]["reason"] for e in audit] == ["new labels", "new labels"]
