"""Training: cached embeddings + n-gram TF-IDF -> torch head per locale, temperature-scaled.

Calibration: the head is trained k times on k-1 folds; the out-of-fold logits give the
cross-validated accuracy and the temperature (grid search minimising NLL). The final head is
then trained on everything and shipped with that temperature.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.model_selection import StratifiedKFold
from torch import nn

from app.nlu.classifier import BACKGROUND, IntentHead, LocaleModel, term_batch
from app.nlu.features import EmbeddingCache, NgramVectorizer
from app.nlu.intents import IntentCatalog
from app.nlu.text import LATEST_SCHEME

RECIPE_VERSION = 3


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adamw"  # "adamw": minibatches; "lbfgs": full batch, L2-regularised
    l2: float = 1e-3  # lbfgs: L2 penalty on the weights (mean loss + l2/2 * |W|^2)
    epochs: int = 30  # lbfgs: iterations = 10 * epochs
    batch_size: int = 32
    lr: float = 5e-3
    weight_decay: float = 1e-5
    hidden: int = 0
    dropout: float = 0.1
    calibration_folds: int = 3
    max_features: int = 60_000
    use_embeddings: bool = True
    use_ngrams: bool = True
    background: bool = True
    seed: int = 0
    text_scheme: int = LATEST_SCHEME  # see app/nlu/text.py
    fast_head: bool = True  # also train an n-gram-only head (lets predict skip the encoder)
    augment_rate: float = 0.0  # > 0: one recognizer-noised copy of each example (noise.py)

    def recipe_id(self, encoder_identity: str) -> str:
        blob = json.dumps([RECIPE_VERSION, asdict(self), encoder_identity], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Progress(Protocol):
    def start(self, description: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NullProgress:
    def start(self, description: str, total: int) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None


@dataclass
class TrainedLocale:
    model: LocaleModel
    metrics: dict[str, Any]


def training_set(catalog: IntentCatalog, locale: str, background: bool) -> tuple[
    list[str], list[str]
]:
    pairs = catalog.examples(locale)
    if background:
        pairs += [(t, BACKGROUND) for t in catalog.out_of_scope.get(locale, [])]
    return [t for t, _ in pairs], [label for _, label in pairs]


AUGMENT_SEED = 1_000_003  # never an evaluation seed


def augmented(texts: list[str], locale: str, rate: float) -> tuple[list[str], list[int]]:
    """Noisy copies (``app.nlu.noise``, its own seed) of ``texts`` and their sources;
    a copy identical to its source after normalisation is left out."""
    from app.nlu.noise import noisy
    from app.nlu.text import canonical_example

    out: list[str] = []
    sources: list[int] = []
    if rate <= 0:
        return out, sources
    for i, t in enumerate(texts):
        copy = noisy(t, locale, rate, AUGMENT_SEED)
        if canonical_example(copy) and canonical_example(copy) != canonical_example(t):
            out.append(copy)
            sources.append(i)
    return out, sources


def train_catalog(
    catalog: IntentCatalog, cache: EmbeddingCache, config: TrainConfig,
    progress: Progress | None = None,
) -> dict[str, TrainedLocale]:
    """Train one head per locale of ``catalog``."""
    progress = progress or NullProgress()
    sets = {loc: training_set(catalog, loc, config.background) for loc in catalog.locales()}
    sources: dict[str, np.ndarray] = {}
    for loc, (texts, labels) in sets.items():
        extra, src = augmented(texts, loc, config.augment_rate)
        sources[loc] = np.concatenate([np.arange(len(texts)), np.asarray(src, dtype=np.int64)])
        sets[loc] = (texts + extra, labels + [labels[i] for i in src])
    all_texts = [t for texts, _ in sets.values() for t in texts]
    embeddings: dict[str, np.ndarray] = {}
    if config.use_embeddings:
        progress.start("embedding examples", len(all_texts))
        for loc, (texts, _) in sets.items():
            embeddings[loc] = cache.embed(texts, progress.advance, config.text_scheme)
    out: dict[str, TrainedLocale] = {}
    for loc, (texts, labels) in sets.items():
        emb = embeddings.get(loc, np.zeros((len(texts), 0), dtype=np.float32))
        out[loc] = train_locale(loc, texts, labels, emb, config, progress, sources[loc])
    return out


def train_locale(
    locale: str, texts: list[str], labels: list[str], emb: np.ndarray, config: TrainConfig,
    progress: Progress, sources: np.ndarray | None = None,
) -> TrainedLocale:
    """``sources[i]``: the example row ``i`` was made from (itself for an original; an
    augmented copy trains in the folds its source trains in, and is never scored)."""
    started = time.monotonic()
    classes = sorted(set(labels) - {BACKGROUND}) + ([BACKGROUND] if BACKGROUND in labels else [])
    index = {c: i for i, c in enumerate(classes)}
    y_all = np.array([index[label] for label in labels], dtype=np.int64)
    src = np.arange(len(texts)) if sources is None else sources
    n_orig = int((src == np.arange(len(texts))).sum())
    y = y_all[:n_orig]
    folds = [
        (np.flatnonzero(np.isin(src, tr)), te)
        for tr, te in _folds(y, config.calibration_folds, config.seed)
    ]
    fast = config.fast_head and config.use_ngrams and config.use_embeddings
    heads = 2 if fast else 1
    progress.start(f"training {locale} ({len(classes)} classes)",
                   (len(folds) + 1) * config.epochs * heads)
    oof = np.zeros((n_orig, len(classes)), dtype=np.float32)
    oof_fast = np.zeros_like(oof)
    for train_idx, test_idx in folds:
        vec, head, fast_head = _fit(texts, emb, y_all, train_idx, len(classes), config, progress)
        held = vec.transform([texts[i] for i in test_idx])
        oof[test_idx] = _logits(head, held, emb[test_idx])
        if fast_head is not None:
            oof_fast[test_idx] = _logits(fast_head, held, np.zeros((len(test_idx), 0)))
    temperature = fit_temperature(oof, y) if folds else 1.0
    vec, head, fast_head = _fit(texts, emb, y_all, np.arange(len(texts)), len(classes), config,
                                progress)
    metrics: dict[str, Any] = {
        "n_examples": n_orig, "n_augmented": len(texts) - n_orig, "n_classes": len(classes),
        "temperature": temperature,
        "train_seconds": round(time.monotonic() - started, 2), "n_terms": vec.size,
    }
    if folds:
        metrics["cv_accuracy"] = round(float((oof.argmax(1) == y).mean()), 4)
    fast_temperature = 1.0
    if folds and fast_head is not None:
        fast_temperature = fit_temperature(oof_fast, y)
        metrics["cv_accuracy_fast"] = round(float((oof_fast.argmax(1) == y).mean()), 4)
    model = LocaleModel(locale, classes, vec, head, temperature, config.use_embeddings,
                        fast_head, fast_temperature)
    return TrainedLocale(model, metrics)


def _folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    smallest = int(np.bincount(y).min()) if len(y) else 0
    k = min(k, smallest)
    if k < 2:
        return []
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _fit(
    texts: list[str], emb: np.ndarray, y: np.ndarray, idx: np.ndarray, n_classes: int,
    config: TrainConfig, progress: Progress,
) -> tuple[NgramVectorizer, IntentHead, IntentHead | None]:
    sub = [texts[i] for i in idx]
    if config.use_ngrams:
        vec = NgramVectorizer.fit(sub, config.max_features, config.text_scheme)
    else:
        vec = NgramVectorizer({}, [], config.text_scheme)
    terms = vec.transform(sub)
    head = fit_head(emb[idx], terms, y[idx], n_classes, config, progress)
    fast = None
    if config.fast_head and config.use_ngrams and config.use_embeddings:
        fast = fit_head(np.zeros((len(idx), 0), dtype=np.float32), terms, y[idx], n_classes,
                        config, progress)
    return vec, head, fast


def fit_head(
    emb: np.ndarray, terms: sp.csr_matrix, y: np.ndarray, n_classes: int, config: TrainConfig,
    progress: Progress,
) -> IntentHead:
    torch.manual_seed(config.seed)
    head = IntentHead(emb.shape[1], terms.shape[1], n_classes, config.hidden, config.dropout)
    emb_t = torch.from_numpy(emb).float()
    y_t = torch.from_numpy(y)
    head.train()
    if config.optimizer == "lbfgs" and config.hidden == 0:
        _fit_lbfgs(head, emb_t, terms, y_t, config, progress)
    elif config.optimizer in {"adamw", "lbfgs"}:
        _fit_adamw(head, emb_t, terms, y_t, config, progress)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    head.eval()
    return head


def _fit_lbfgs(
    head: IntentHead, emb: torch.Tensor, terms: sp.csr_matrix, y: torch.Tensor,
    config: TrainConfig, progress: Progress,
) -> None:
    """Full-batch L-BFGS on the convex (linear) head: L2-regularised multinomial regression."""
    batch = term_batch(terms)
    weights = [p for name, p in head.named_parameters() if not name.endswith("bias")]
    optim = torch.optim.LBFGS(
        head.parameters(), lr=1.0, max_iter=10, history_size=20, line_search_fn="strong_wolfe"
    )
    loss_fn = nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        optim.zero_grad()
        loss: torch.Tensor = loss_fn(head(emb, batch), y)
        for w in weights:
            loss = loss + 0.5 * config.l2 * (w * w).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    for _ in range(config.epochs):
        optim.step(closure)  # type: ignore[no-untyped-call]
        progress.advance(1)


def _fit_adamw(
    head: IntentHead, emb: torch.Tensor, terms: sp.csr_matrix, y: torch.Tensor,
    config: TrainConfig, progress: Progress,
) -> None:
    rng = np.random.default_rng(config.seed)
    optim = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(config.epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            loss = loss_fn(head(emb[idx], term_batch(terms[idx])), y[idx])
            optim.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optim.step()
        progress.advance(1)


def _logits(head: IntentHead, terms: sp.csr_matrix, emb: np.ndarray) -> Any:
    with torch.inference_mode():
        return head(torch.from_numpy(emb).float(), term_batch(terms)).numpy()


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of out-of-fold logits."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.05), np.log(20.0), 160)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = float(-logp[np.arange(len(y)), y].mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return round(best_t, 4)
