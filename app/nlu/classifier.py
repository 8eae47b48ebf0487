"""The intent classifier: a torch head over [sentence embedding ; sparse n-gram TF-IDF].

One head per locale. Logits are divided by a temperature fitted on held-out folds, so the
softmax is a calibrated confidence. An optional background class (``__oos__``, trained on
the data's ``out_of_scope`` examples) absorbs probability mass for off-topic input and is
never returned as an intent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from app.events import IntentCandidate, IntentResult
from app.nlu.features import NgramVectorizer, SentenceEncoder
from app.nlu.text import base_locale, normalize_text

BACKGROUND = "__oos__"
RANKING_SIZE = 5


class IntentHead(nn.Module):
    """Linear (``hidden == 0``) or one-hidden-layer head over dense + sparse features.

    The sparse TF-IDF part is an ``EmbeddingBag`` (sum of term rows weighted by TF-IDF),
    which is what a sparse-by-dense product is, at a fraction of the cost.
    """

    def __init__(
        self, emb_dim: int, n_terms: int, n_classes: int, hidden: int = 0, dropout: float = 0.1
    ) -> None:
        super().__init__()
        first = hidden or n_classes
        self.emb_dim = emb_dim
        self.n_terms = n_terms
        self.hidden = hidden
        self.dropout = nn.Dropout(dropout)
        self.emb_proj = nn.Linear(emb_dim, first) if emb_dim else None
        self.terms = nn.EmbeddingBag(max(n_terms, 1), first, mode="sum")
        nn.init.normal_(self.terms.weight, std=0.01)
        self.bias = nn.Parameter(torch.zeros(first))
        self.out = nn.Linear(hidden, n_classes) if hidden else None

    def forward(self, emb: torch.Tensor, terms: TermBatch) -> torch.Tensor:
        z = self.bias.expand(emb.shape[0], -1)
        if self.n_terms:
            z = z + self.terms(terms.indices, terms.offsets, per_sample_weights=terms.weights)
        if self.emb_proj is not None:
            z = z + self.emb_proj(self.dropout(emb))
        if self.out is None:
            return z
        logits: torch.Tensor = self.out(self.dropout(torch.relu(z)))
        return logits


@dataclass(frozen=True)
class TermBatch:
    indices: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor


def term_batch(matrix: sp.csr_matrix) -> TermBatch:
    """CSR rows -> EmbeddingBag inputs (indices, row offsets, TF-IDF weights)."""
    return TermBatch(
        torch.from_numpy(matrix.indices.astype(np.int64)),
        torch.from_numpy(matrix.indptr[:-1].astype(np.int64)),
        torch.from_numpy(matrix.data.astype(np.float32)),
    )


@dataclass
class LocaleModel:
    locale: str
    labels: list[str]  # may include BACKGROUND
    vectorizer: NgramVectorizer
    head: IntentHead
    temperature: float
    use_embeddings: bool = True

    def probabilities(self, emb: np.ndarray, texts: list[str]) -> np.ndarray:
        terms = term_batch(self.vectorizer.transform(texts))
        emb_t = torch.from_numpy(emb if self.use_embeddings else np.zeros((len(texts), 0)))
        with torch.inference_mode():
            logits = self.head(emb_t.float(), terms) / self.temperature
            return torch.softmax(logits, dim=-1).numpy()

    def save(self, directory: Path) -> dict[str, Any]:
        (directory / f"{self.locale}.vocab.json").write_text(
            self.vectorizer.to_json(), encoding="utf-8"
        )
        state = {k: v.detach().contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, str(directory / f"{self.locale}.head.safetensors"))
        return {
            "labels": self.labels, "temperature": self.temperature,
            "hidden": self.head.hidden, "emb_dim": self.head.emb_dim,
            "n_terms": self.vectorizer.size, "use_embeddings": self.use_embeddings,
        }

    @classmethod
    def load(cls, directory: Path, locale: str, meta: dict[str, Any]) -> LocaleModel:
        vectorizer = NgramVectorizer.from_json(
            (directory / f"{locale}.vocab.json").read_text(encoding="utf-8")
        )
        labels = list(meta["labels"])
        head = IntentHead(int(meta["emb_dim"]), vectorizer.size, len(labels), int(meta["hidden"]))
        head.load_state_dict(load_file(str(directory / f"{locale}.head.safetensors")))
        head.eval()
        return cls(locale, labels, vectorizer, head, float(meta["temperature"]),
                   bool(meta.get("use_embeddings", True)))


@dataclass(frozen=True)
class Decision:
    threshold: float
    margin: float
    max_chars: int


class IntentClassifier:
    """A loaded model: ``predict`` never raises on text; it is thread-safe."""

    def __init__(
        self, locales: dict[str, LocaleModel], encoder: SentenceEncoder | None,
        decision: Decision, manifest: dict[str, Any],
    ) -> None:
        self.locales = locales
        self.encoder = encoder
        self.decision = decision
        self.manifest = manifest

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", ""))

    def intent_names(self) -> set[str]:
        return {label for m in self.locales.values() for label in m.labels} - {BACKGROUND}

    def predict(self, text: str, locale: str) -> IntentResult:
        loc = base_locale(locale)
        result = IntentResult(text=text, locale=loc, intent=None, confidence=0.0)
        model = self.locales.get(loc)
        if model is None:
            return result.model_copy(update={"reason": "unknown_locale"})
        if len(text) > self.decision.max_chars:
            return result.model_copy(update={"reason": "too_long"})
        if not normalize_text(text):
            return result.model_copy(update={"reason": "empty"})
        return self.decide(result, self.probabilities([text], loc)[0], model.labels)

    def predict_many(self, texts: list[str], locale: str, batch: int = 256) -> list[IntentResult]:
        """``predict`` for many texts of one locale, batched through the encoder."""
        loc = base_locale(locale)
        model = self.locales.get(loc)
        results = [self.predict(t, loc) if model is None else None for t in texts]
        if model is None:
            return [r for r in results if r is not None]
        todo = [
            i for i, t in enumerate(texts)
            if len(t) <= self.decision.max_chars and normalize_text(t)
        ]
        todo_set = set(todo)
        for i, t in enumerate(texts):
            if i not in todo_set:
                results[i] = self.predict(t, loc)
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            probs = self.probabilities([texts[i] for i in chunk], loc)
            for row, i in zip(probs, chunk, strict=True):
                base = IntentResult(text=texts[i], locale=loc, intent=None, confidence=0.0)
                results[i] = self.decide(base, row, model.labels)
        return [r for r in results if r is not None]

    def probabilities(self, texts: list[str], locale: str) -> np.ndarray:
        model = self.locales[locale]
        if model.use_embeddings and self.encoder is not None:
            emb = self.encoder.encode(texts)
        else:
            emb = np.zeros((len(texts), 0), dtype=np.float32)
        return model.probabilities(emb, texts)

    def decide(self, result: IntentResult, probs: np.ndarray, labels: list[str]) -> IntentResult:
        order = np.argsort(-probs)
        ranking = [
            IntentCandidate(intent=labels[i], confidence=round(float(probs[i]), 4))
            for i in order if labels[i] != BACKGROUND
        ][:RANKING_SIZE]
        top_label = labels[int(order[0])]
        top = float(probs[order[0]])
        second = float(probs[order[1]]) if len(order) > 1 else 0.0
        update: dict[str, Any] = {"ranking": ranking, "confidence": round(top, 4)}
        if top_label == BACKGROUND or top < self.decision.threshold:
            update["reason"] = "low_confidence"
            update["confidence"] = ranking[0].confidence if ranking else 0.0
        elif top - second < self.decision.margin:
            update["reason"] = "ambiguous"
        else:
            update["intent"] = top_label
        return result.model_copy(update=update)


def read_manifest(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    return data


def load_classifier(
    directory: Path, encoder: SentenceEncoder | None, decision: Decision
) -> IntentClassifier:
    manifest = read_manifest(directory)
    locales = {
        loc: LocaleModel.load(directory, loc, meta) for loc, meta in manifest["locales"].items()
    }
    return IntentClassifier(locales, encoder, decision, manifest)
