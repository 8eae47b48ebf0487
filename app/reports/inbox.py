"""The intent-improvement inbox: what callers said that the classifier refused or was unsure
of (each intent event with no intent or a low confidence, beside the caller's words just
before it), and the labels an analyst gives them.

Labels are training examples: ``<intents>/inbox_labels.yaml`` (``more_examples`` of existing
intents, and ``out_of_scope``), checked by the same loader as ``hotline intents``
(``app.nlu.intents.load_intents``) before the file is replaced; which utterances were
labelled, by whom and when is kept beside it in ``inbox_labels.json`` (data dir).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import or_, select

from app.nlu.intents import OUT_OF_SCOPE, IntentFileError, check_with_file, load_intents
from app.nlu.text import base_locale
from app.reports.filters import ReportFilter
from app.reports.sql import payload_float, payload_text
from app.storage.db import Database
from app.storage.models import CallEventRow, CallRow, RecordingRow

LABELS_FILE = "inbox_labels.yaml"
MAX_ITEMS = 200
HEADER = ("# Written by the console's intent inbox: what callers said in real calls, labelled\n"
          "# by an analyst. Checked by the same loader as `hotline intents`.\n")


@dataclass(frozen=True)
class InboxItem:
    call_id: str
    seq: int  # the intent event's
    at: str
    locale: str
    text: str
    guess: str | None  # what the classifier said (None: refused)
    confidence: float
    recorded: bool


def inbox_items(db: Database, f: ReportFilter, threshold: float,
                done: set[tuple[str, int]], limit: int = 50) -> list[InboxItem]:
    """Unlabelled utterances the classifier refused or scored under ``threshold``, newest
    first."""
    conf = payload_float("confidence")
    with db.session() as s:
        events = s.execute(
            select(CallEventRow.call_id, CallEventRow.seq, CallEventRow.at,
                   payload_text("intent"), conf, CallRow.locale)
            .join(CallRow, CallRow.id == CallEventRow.call_id)
            .where(CallEventRow.type == "intent", *f.conditions(),
                   or_(payload_text("intent").is_(None), conf < threshold))
            .order_by(CallEventRow.at.desc()).limit(MAX_ITEMS * 2)
        ).all()
        pending = [e for e in events if (e[0], e[1]) not in done][: limit * 2]
        ids = sorted({e[0] for e in pending})
        said: dict[str, list[tuple[int, str]]] = {}
        recorded: set[str] = set()
        if ids:
            for call_id, seq, payload in s.execute(
                select(CallEventRow.call_id, CallEventRow.seq, CallEventRow.payload)
                .where(CallEventRow.call_id.in_(ids), CallEventRow.type == "transcript")
                .order_by(CallEventRow.call_id, CallEventRow.seq)
            ).all():
                if payload.get("is_final") and payload.get("speaker", "caller") == "caller" \
                        and payload.get("text"):
                    said.setdefault(call_id, []).append((seq, str(payload["text"])))
            recorded = set(s.scalars(select(RecordingRow.call_id)
                                     .where(RecordingRow.call_id.in_(ids))).all())
    items: list[InboxItem] = []
    for call_id, seq, at, guess, confidence, locale in pending:
        before = [text for t_seq, text in said.get(call_id, []) if t_seq < seq]
        if not before:
            continue  # nothing the caller said to label (keys, silence)
        items.append(InboxItem(call_id, int(seq), at.isoformat(), base_locale(locale),
                               before[-1], guess, float(confidence or 0.0),
                               call_id in recorded))
        if len(items) >= limit:
            break
    return items


@dataclass(frozen=True)
class Label:
    call_id: str
    seq: int
    text: str
    locale: str
    label: str  # an intent, or "out_of_scope"
    by: str
    at: str


class LabelStore:
    """The labels YAML in the intents folder and the JSON list of what was labelled."""

    def __init__(self, intents_dir: Path, log_path: Path) -> None:
        self.intents_dir = intents_dir
        self.path = intents_dir / LABELS_FILE
        self.log_path = log_path
        self._lock = threading.Lock()

    def labels(self) -> list[Label]:
        if not self.log_path.is_file():
            return []
        return [Label(**item) for item in json.loads(self.log_path.read_text("utf-8"))]

    def done(self) -> set[tuple[str, int]]:
        return {(label.call_id, label.seq) for label in self.labels()}

    def intents(self) -> list[str]:
        return sorted(load_intents(self.intents_dir).names())

    def add(self, label: Label) -> None:
        """Add one label; ``ValueError`` with the loader's reason (file:line) when the
        intents folder would not load with it (unknown intent, an example already listed)."""
        with self._lock:
            labels = [x for x in self.labels()
                      if (x.call_id, x.seq) != (label.call_id, label.seq)] + [label]
            text = HEADER + yaml.safe_dump(_document(labels), allow_unicode=True,
                                           sort_keys=True)
            self._check(text)
            _replace(self.path, text)
            _replace(self.log_path, json.dumps([asdict(x) for x in labels],
                                               ensure_ascii=False, indent=1))

    def _check(self, text: str) -> None:
        try:
            check_with_file(self.intents_dir, LABELS_FILE, text)
        except IntentFileError as exc:
            raise ValueError(str(exc)) from None


def _document(labels: list[Label]) -> dict[str, Any]:
    more: dict[str, dict[str, list[str]]] = {}
    oos: dict[str, list[str]] = {}
    for x in labels:  # the same words labelled the same in two calls: one example
        texts = (oos.setdefault(x.locale, []) if x.label == OUT_OF_SCOPE
                 else more.setdefault(x.label, {}).setdefault(x.locale, []))
        if x.text not in texts:
            texts.append(x.text)
    doc: dict[str, Any] = {"domain": "inbox",
                           "description": "labelled utterances from real calls"}
    if more:
        doc["more_examples"] = more
    if oos:
        doc["out_of_scope"] = oos
    return doc


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
