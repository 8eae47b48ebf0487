"""Retraining with the gate, on a small intents folder with the real classifier: a model
trained with good labels is activated; one trained with labels that contradict the held-out
files is kept as a candidate with the reason and the figures, and the serving model stays."""

from __future__ import annotations

from pathlib import Path

from app.nlu.gate import train_gated
from app.nlu.intents import load_intents
from app.nlu.pipeline import train_folder
from app.nlu.store import current_model_dir
from app.reports.inbox import LABELS_FILE
from app.settings import Settings

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
GOOD = """domain: inbox
more_examples:
  order_status:
    en: [where is my stuff]
"""
# the held-out order questions, taught as opening-hours questions
POISON = """domain: inbox
more_examples:
  business_hours:
    en: [where is my parcel now, is my order on its way, where is my order now,
         is my parcel on its way, where is my package now]
"""


def test_activated_only_without_regression(tmp_path: Path) -> None:
    data, models, candidates = tmp_path / "intents", tmp_path / "models", tmp_path / "cand"
    (data / "tests").mkdir(parents=True)
    (data / "shop.yaml").write_text(DATA, encoding="utf-8")
    (data / "tests" / "heldout_en.yaml").write_text(HELDOUT, encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", intent_min_accuracy=0.5,
                        intent_min_oos_recall=0.0)
    serving = train_folder(data, models, settings)

    (data / LABELS_FILE).write_text(GOOD, encoding="utf-8")
    assert "where is my stuff" in load_intents(data).intents["order_status"].examples["en"]
    good = train_gated(data, models, candidates, settings)
    assert good.activated, good.reason
    assert good.current_version == serving.name
    assert current_model_dir(models) == models / good.candidate
    accuracy = good.figures["en"]["in_scope_accuracy"]
    assert accuracy["candidate"] >= accuracy["current"]

    (data / LABELS_FILE).write_text(POISON, encoding="utf-8")
    bad = train_gated(data, models, candidates, settings)
    assert not bad.activated
    assert "en in_scope_accuracy" in bad.reason and "< current" in bad.reason
    worse = bad.figures["en"]["in_scope_accuracy"]
    assert worse["candidate"] < worse["current"]
    assert current_model_dir(models) == models / good.candidate  # still serving the good one
    assert (candidates / bad.candidate / "manifest.json").is_file()  # kept as a candidate
