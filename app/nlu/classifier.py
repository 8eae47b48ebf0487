"""The intent classifier: a torch head over [sentence embedding ; sparse n-gram TF-IDF].

One head per locale. Logits are divided by a temperature fitted on held-out folds, so the
softmax is a calibrated confidence. An optional background class (``__oos__``, trained on
the data's ``out_of_scope`` examples) absorbs probability mass for off-topic input and is
never returned as an intent.

Fast path: a model may also carry an n-gram-only head (``fast``), calibrated the same way.
When it alone is confident (top label an intent, probability >= ``Decision.fast_threshold``)
the sentence encoder is skipped: most caller turns ("转人工", "yes") never pay for it.

Recognizer n-best: ``predict_alternatives`` classifies every alternative, mixes their
distributions weighted by the recognizer's confidence, and reports which alternative won.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from app.events import IntentCandidate, IntentResult
from app.nlu.features import Encoder, NgramVectorizer
from app.nlu.text import base_locale, feature_text, normalize_text

BACKGROUND = "__oos__"
RANKING_SIZE = 5
MIN_RELATIVE_SHARE = 0.5  # n-best: alternatives below half the best one's share are ignored


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
    fast: IntentHead | None = None  # n-gram-only head (no encoder), same labels
    fast_temperature: float = 1.0

    @property
    def scheme(self) -> int:
        return self.vectorizer.scheme

    def probabilities(self, emb: np.ndarray, texts: list[str]) -> np.ndarray:
        return self.probabilities_terms(emb, self.vectorizer.transform(texts))

    def probabilities_terms(self, emb: np.ndarray, terms: sp.csr_matrix) -> np.ndarray:
        emb_t = torch.from_numpy(emb if self.use_embeddings else np.zeros((emb.shape[0], 0)))
        with torch.inference_mode():
            logits = self.head(emb_t.float(), term_batch(terms)) / self.temperature
            return torch.softmax(logits, dim=-1).numpy()

    def fast_probabilities(self, terms: sp.csr_matrix) -> np.ndarray | None:
        if self.fast is None:
            return None
        with torch.inference_mode():
            logits = self.fast(torch.zeros((terms.shape[0], 0)), term_batch(terms))
            return torch.softmax(logits / self.fast_temperature, dim=-1).numpy()

    def save(self, directory: Path) -> dict[str, Any]:
        (directory / f"{self.locale}.vocab.json").write_text(
            self.vectorizer.to_json(), encoding="utf-8"
        )
        save_file(_half(self.head), str(directory / f"{self.locale}.head.safetensors"))
        meta: dict[str, Any] = {
            "labels": self.labels, "temperature": self.temperature,
            "hidden": self.head.hidden, "emb_dim": self.head.emb_dim,
            "n_terms": self.vectorizer.size, "use_embeddings": self.use_embeddings,
            "scheme": self.scheme,
        }
        if self.fast is not None:
            save_file(_half(self.fast), str(directory / f"{self.locale}.fast.safetensors"))
            meta.update(fast_temperature=self.fast_temperature, fast_hidden=self.fast.hidden)
        return meta

    @classmethod
    def load(cls, directory: Path, locale: str, meta: dict[str, Any]) -> LocaleModel:
        vectorizer = NgramVectorizer.from_json(
            (directory / f"{locale}.vocab.json").read_text(encoding="utf-8")
        )
        labels = list(meta["labels"])
        head = IntentHead(int(meta["emb_dim"]), vectorizer.size, len(labels), int(meta["hidden"]))
        head.load_state_dict(load_file(str(directory / f"{locale}.head.safetensors")))
        head.eval()
        fast: IntentHead | None = None
        fast_file = directory / f"{locale}.fast.safetensors"
        if "fast_temperature" in meta and fast_file.is_file():
            fast = IntentHead(0, vectorizer.size, len(labels), int(meta.get("fast_hidden", 0)))
            fast.load_state_dict(load_file(str(fast_file)))
            fast.eval()
        return cls(locale, labels, vectorizer, head, float(meta["temperature"]),
                   bool(meta.get("use_embeddings", True)), fast,
                   float(meta.get("fast_temperature", 1.0)))


def _half(module: nn.Module) -> dict[str, torch.Tensor]:
    """Weights stored as float16 (half the size on disk; loaded back into float32)."""
    return {k: v.detach().half().contiguous() for k, v in module.state_dict().items()}


@dataclass(frozen=True)
class Decision:
    threshold: float
    margin: float
    max_chars: int
    fast_threshold: float = 1.01  # > 1: never skip the encoder


class IntentClassifier:
    """A loaded model: ``predict`` never raises on text; it is thread-safe."""

    def __init__(
        self, locales: dict[str, LocaleModel], encoder: Encoder | None,
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
        refusal = self._refusal(text, loc)
        if refusal is not None:
            return result.model_copy(update={"reason": refusal})
        model = self.locales[loc]
        return self.decide(result, self.probabilities([text], loc)[0], model.labels)

    def _refusal(self, text: str, loc: str) -> str | None:
        if loc not in self.locales:
            return "unknown_locale"
        if len(text) > self.decision.max_chars:
            return "too_long"
        if not normalize_text(text):
            return "empty"
        return None

    def predict_alternatives(
        self, alternatives: Sequence[tuple[str, float]], locale: str
    ) -> IntentResult:
        """Classify a recognizer n-best list: (text, confidence) pairs, best first.

        Each usable alternative (share >= ``MIN_RELATIVE_SHARE`` of the best one's) is
        decided like ``predict``. Alternatives that name an intent vote for it with their
        recognizer share; the intent with the most share wins, taken from its alternative
        with the highest share x confidence (``alternative_index``, whose text is the
        result's ``text``). So a misheard best string that names no intent does not hide
        a second reading that does. When none names an intent, the refusal is the one of the
        share-weighted mixture of all their class distributions (best alternative's text).
        """
        loc = base_locale(locale)
        usable = [i for i, (t, _) in enumerate(alternatives) if self._refusal(t, loc) is None]
        if not usable:
            first = alternatives[0][0] if alternatives else ""
            return self.predict(first, loc).model_copy(
                update={"alternative_index": 0 if alternatives else None})
        conf = np.array([max(0.0, float(alternatives[i][1])) for i in usable], dtype=np.float64)
        weights = conf / conf.sum() if conf.sum() > 0 else np.full(len(usable), 1 / len(usable))
        keep = weights >= MIN_RELATIVE_SHARE * weights.max()
        usable = [i for i, k in zip(usable, keep, strict=True) if k]
        weights = weights[keep] / weights[keep].sum()
        probs = self.probabilities([alternatives[i][0] for i in usable], loc)
        labels = self.locales[loc].labels
        decided = [
            self.decide(IntentResult(text=alternatives[i][0], locale=loc, intent=None,
                                     confidence=0.0, alternative_index=i), row, labels)
            for i, row in zip(usable, probs, strict=True)
        ]
        votes: dict[str, float] = {}
        for w, d in zip(weights, decided, strict=True):
            if d.intent is not None:
                votes[d.intent] = votes.get(d.intent, 0.0) + float(w)
        if not votes:
            mixed = (weights[:, None] * probs).sum(axis=0)
            base = IntentResult(text=alternatives[usable[0]][0], locale=loc, intent=None,
                                confidence=0.0, alternative_index=usable[0])
            return self.decide(base, mixed, labels)
        intent = max(votes, key=lambda k: votes[k])
        return max((d for d in decided if d.intent == intent),
                   key=lambda d: weights[usable.index(d.alternative_index or 0)] * d.confidence)

    def predict_many(self, texts: list[str], locale: str, batch: int = 256) -> list[IntentResult]:
        """``predict`` for many texts of one locale, batched through the encoder."""
        loc = base_locale(locale)
        results: list[IntentResult | None] = [None] * len(texts)
        todo: list[int] = []
        for i, t in enumerate(texts):
            if self._refusal(t, loc) is None:
                todo.append(i)
            else:
                results[i] = self.predict(t, loc)
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            probs = self.probabilities([texts[i] for i in chunk], loc)
            for row, i in zip(probs, chunk, strict=True):
                base = IntentResult(text=texts[i], locale=loc, intent=None, confidence=0.0)
                results[i] = self.decide(base, row, self.locales[loc].labels)
        return [r for r in results if r is not None]

    def probabilities(self, texts: list[str], locale: str) -> np.ndarray:
        """Class probabilities per text; rows the fast head is sure of skip the encoder."""
        model = self.locales[locale]
        terms = model.vectorizer.transform(texts)
        out = np.zeros((len(texts), len(model.labels)), dtype=np.float32)
        todo = np.arange(len(texts))
        fast = model.fast_probabilities(terms) if self.decision.fast_threshold <= 1 else None
        if fast is not None:
            top = fast.argmax(axis=1)
            sure = (fast.max(axis=1) >= self.decision.fast_threshold) & (
                np.array([model.labels[i] != BACKGROUND for i in top], dtype=bool)
            )
            out[sure] = fast[sure]
            todo = np.flatnonzero(~sure)
        if len(todo) == 0:
            return out
        if model.use_embeddings and self.encoder is not None:
            prepared = [feature_text(texts[i], model.scheme) for i in todo]
            emb = self.encoder.encode_prepared(prepared)
        else:
            emb = np.zeros((len(todo), 0), dtype=np.float32)
        out[todo] = model.probabilities_terms(emb, terms[todo])
        return out

    def decide(self, result: IntentResult, probs: np.ndarray, labels: list[str],
               decision: Decision | None = None) -> IntentResult:
        rule = decision or self.decision
        order = np.argsort(-probs)
        ranking = [
            IntentCandidate(intent=labels[i], confidence=round(float(probs[i]), 4))
            for i in order if labels[i] != BACKGROUND
        ][:RANKING_SIZE]
        top_label = labels[int(order[0])]
        top = float(probs[order[0]])
        second = float(probs[order[1]]) if len(order) > 1 else 0.0
        update: dict[str, Any] = {"ranking": ranking, "confidence": round(top, 4)}
        if top_label == BACKGROUND or top < rule.threshold:
            update["reason"] = "low_confidence"
            update["confidence"] = ranking[0].confidence if ranking else 0.0
        elif top - second < rule.margin:
            update["reason"] = "ambiguous"
        else:
            update["intent"] = top_label
        return result.model_copy(update=update)


def read_manifest(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    return data


def load_classifier(
    directory: Path, encoder: Encoder | None, decision: Decision
) -> IntentClassifier:
    manifest = read_manifest(directory)
    locales = {
        loc: LocaleModel.load(directory, loc, meta) for loc, meta in manifest["locales"].items()
    }
    return IntentClassifier(locales, encoder, decision, manifest)
