"""``NluService``: what the call pipeline uses (intent + entities + sentiment per turn).

Load once per process. ``understand`` is synchronous and thread-safe (callers run it in a
thread pool, never on the event loop). ``reload`` swaps a newly trained model in with one
reference assignment: a call already inside ``understand`` finishes on the model it started
with, the next turn uses the new one, no call is dropped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from app.events import Alternative, Entity, IntentResult, Sentiment
from app.log import get_logger
from app.nlu.classifier import IntentClassifier
from app.nlu.entities import extract_entities
from app.nlu.intents import IntentCatalog, load_intents
from app.nlu.pipeline import open_classifier, stale_reason, train_folder
from app.nlu.sentiment import SentimentAnalyzer, SentimentTrend, make_analyzer
from app.nlu.store import current_model_dir
from app.nlu.text import base_locale
from app.settings import Settings

__all__ = ["NluService", "SentimentTrend", "Understanding", "RichProgress"]

log = get_logger()


@dataclass
class Understanding:
    intent: IntentResult
    entities: list[Entity] = field(default_factory=list)
    sentiment: Sentiment = field(default_factory=lambda: Sentiment(score=0.0, label="neutral"))


class RichProgress:
    """Adapts ``train.Progress`` to a Rich progress bar (on stderr)."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console or Console(stderr=True), transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, description: str, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)


class NluService:
    def __init__(
        self, settings: Settings, data_dir: Path | None = None, model_dir: Path | None = None
    ) -> None:
        self.settings = settings
        self.data_dir = data_dir or settings.intents_dir
        self.model_dir = model_dir or settings.intent_model_path
        self.catalog: IntentCatalog = load_intents(self.data_dir)
        self.sentiment: SentimentAnalyzer = make_analyzer(settings.sentiment_model_path)
        self._classifier: IntentClassifier | None = None
        self._train_lock = threading.Lock()
        # calls' turns are understood here, not in the default to_thread pool they share
        self._executor = ThreadPoolExecutor(settings.nlu_workers, thread_name_prefix="nlu")

    async def understand_async(
        self, heard: str | Sequence[Alternative] | Sequence[tuple[str, float]], locale: str
    ) -> Understanding:
        """``understand`` (text or n-best) on the service's own sized executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.understand, heard, locale)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def classifier(self) -> IntentClassifier | None:
        return self._classifier

    def stale_reason(self) -> str | None:
        """Why the model on disk cannot serve the current data (``None``: it can)."""
        return stale_reason(self.catalog, self.model_dir, self.settings)

    def ensure_trained(self, progress: bool = False) -> Path:
        """Train when the model is missing or stale (data hash changed); return its folder."""
        with self._train_lock:
            reason = self.stale_reason()
            current = current_model_dir(self.model_dir)
            if reason is None and current is not None:
                return current
            log.info("training intent model", reason=reason, data_dir=str(self.data_dir))
            if progress:
                with RichProgress() as bar:
                    return train_folder(self.data_dir, self.model_dir, self.settings,
                                        progress=bar, catalog=self.catalog)
            return train_folder(self.data_dir, self.model_dir, self.settings,
                                catalog=self.catalog)

    def load(self) -> str | None:
        """Load the current model; return a problem string if it is unavailable."""
        try:
            self._classifier = open_classifier(self.model_dir, self.settings)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            self._classifier = None
            return f"intent model unavailable: {exc}"
        stale = self.stale_reason()
        if stale is not None:
            log.warning("intent model is stale", reason=stale)
        return None

    @property
    def version(self) -> str | None:
        """The loaded model's version (None without a model)."""
        version = getattr(self._classifier, "version", None)
        return None if version is None else str(version)

    def reload(self) -> None:
        """Re-read the intent data and the current model; swap both in at once.

        On failure the running model stays in place and the error propagates.
        """
        catalog = load_intents(self.data_dir)
        classifier = open_classifier(self.model_dir, self.settings)
        self.catalog, self._classifier = catalog, classifier
        log.info("intent model reloaded", version=classifier.version)

    def predict(self, text: str, locale: str) -> IntentResult:
        classifier = self._classifier
        if classifier is None:
            return IntentResult(text=text, locale=base_locale(locale), intent=None,
                                confidence=0.0, reason="model_unavailable")
        return classifier.predict(text, locale)

    def predict_alternatives(
        self, alternatives: Sequence[tuple[str, float]], locale: str
    ) -> IntentResult:
        classifier = self._classifier
        if classifier is None:
            text = alternatives[0][0] if alternatives else ""
            return IntentResult(text=text, locale=base_locale(locale), intent=None,
                                confidence=0.0, reason="model_unavailable")
        return classifier.predict_alternatives(alternatives, locale)

    def understand(
        self, heard: str | Sequence[Alternative] | Sequence[tuple[str, float]], locale: str,
        now: datetime | None = None,
    ) -> Understanding:
        """Intent, entities and sentiment of one caller turn.

        ``heard`` is the text, or the recognizer's n-best list (``Transcript.alternatives``
        or (text, confidence) pairs, best first): the intent is classified over all of them
        (``IntentResult.alternative_index`` names the one that won) and entities and
        sentiment are read from the winning text.
        """
        if isinstance(heard, str):
            intent = self.predict(heard, locale)
        else:
            pairs = [(a.text, a.confidence) if isinstance(a, Alternative) else (a[0], a[1])
                     for a in heard]
            intent = self.predict_alternatives(pairs, locale)
        text = intent.text
        return Understanding(
            intent=intent,
            entities=extract_entities(text, locale, now),
            sentiment=self.sentiment.score(text, locale),
        )
