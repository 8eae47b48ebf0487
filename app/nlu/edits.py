"""Examples edited from the console: ``<intents>/console_edits.yaml`` (``more_examples`` of
intents other files define), written only after the whole folder loaded with the change by
the same loader as ``hotline intents`` (a conflict: ``EditRefused`` with file:line: reason,
nothing written). Examples of the shipped files are edited in those files (in the
repository), never from the console: editing or removing one is refused, naming where it is.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.nlu.intents import IntentCatalog, IntentFileError, check_with_file, load_intents

EDITS_FILE = "console_edits.yaml"
HEADER = ("# Examples added from the console (/console/intents); written by Hotline.\n"
          "# Each one was checked with the whole folder before it was saved.\n")


class EditRefused(ValueError):
    """Why an edit was not saved; ``status`` is the HTTP answer (422 conflict, 404, 409)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Example:
    intent: str
    locale: str
    text: str


class EditStore:
    """The console's examples file; one lock serializes the app's edits."""

    def __init__(self, intents_dir: Path) -> None:
        self.intents_dir = intents_dir
        self.path = intents_dir / EDITS_FILE
        self._lock = threading.Lock()

    def owned(self) -> dict[str, dict[str, list[str]]]:
        """intent -> locale -> texts this file adds."""
        if not self.path.is_file():
            return {}
        try:
            data: Any = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise EditRefused(409, f"{EDITS_FILE} does not read ({exc}): fix it by hand "
                              "first") from None
        more: Any = data.get("more_examples") if isinstance(data, dict) else None
        if not isinstance(more, dict):
            return {}
        return more

    def catalog(self) -> IntentCatalog:
        return load_intents(self.intents_dir)

    def add(self, ex: Example) -> None:
        with self._lock:
            more = self.owned()
            texts = more.setdefault(ex.intent, {}).setdefault(ex.locale, [])
            if ex.text in texts:
                raise EditRefused(409, f"{ex.intent} ({ex.locale}) already has {ex.text!r}")
            texts.append(ex.text)
            self._save(more)

    def replace(self, old: Example, new_text: str) -> None:
        with self._lock:
            more = self.owned()
            texts = self._find(more, old)
            texts[texts.index(old.text)] = new_text
            self._save(more)

    def remove(self, ex: Example) -> None:
        with self._lock:
            more = self.owned()
            self._find(more, ex).remove(ex.text)
            self._save(more)

    def _find(self, more: dict[str, dict[str, list[str]]], ex: Example) -> list[str]:
        texts = more.get(ex.intent, {}).get(ex.locale, [])
        if ex.text in texts:
            return texts
        where = self._shipped(ex)
        if where is not None:
            raise EditRefused(409, f"{ex.text!r} is in {where}: a shipped file's examples "
                              "are edited in that file, not from the console")
        raise EditRefused(404, f"{ex.intent} ({ex.locale}) has no example {ex.text!r}")

    def _shipped(self, ex: Example) -> str | None:
        try:
            intent = self.catalog().intents.get(ex.intent)
        except IntentFileError:
            return None
        if intent is None or ex.text not in intent.examples.get(ex.locale, []):
            return None
        return f"{intent.file.name} (the intent at line {intent.line})"

    def _save(self, more: dict[str, dict[str, list[str]]]) -> None:
        kept = {name: {loc: t for loc, t in locs.items() if t}
                for name, locs in more.items()}
        kept = {name: locs for name, locs in kept.items() if locs}
        doc: dict[str, Any] = {"domain": "console",
                               "description": "examples added from the console"}
        if kept:
            doc["more_examples"] = kept
        text = HEADER + yaml.safe_dump(doc, allow_unicode=True, sort_keys=True)
        self._check(text)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)

    def _check(self, text: str) -> None:
        """Load the whole folder with ``text`` in place of the file; ``EditRefused`` 422."""
        try:
            check_with_file(self.intents_dir, EDITS_FILE, text)
        except IntentFileError as exc:
            raise EditRefused(422, str(exc)) from None
