"""Shared helpers of the NLU benchmarks: data conversion, the baseline, timing."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from app.nlu.evaluate import EvalSet, metrics  # noqa: E402
from app.nlu.intents import OUT_OF_SCOPE, IntentCatalog  # noqa: E402
from app.nlu.text import canonical_example  # noqa: E402


def write_intent_folder(
    folder: Path, locale: str, pairs: Iterable[tuple[str, str]], oos: Iterable[str] = ()
) -> tuple[int, int]:
    """Write (text, intent) pairs as one intents YAML file; drop texts found under two
    intents (an intents folder refuses them). Returns (kept, dropped)."""
    owners: dict[str, set[str]] = {}
    first: dict[str, str] = {}
    for text, intent in pairs:
        key = canonical_example(text)
        if not key:
            continue
        owners.setdefault(key, set()).add(intent)
        first.setdefault(key, text)
    by_intent: dict[str, list[str]] = {}
    dropped = 0
    for key, names in owners.items():
        if len(names) > 1:
            dropped += 1
            continue
        by_intent.setdefault(next(iter(names)), []).append(first[key])
    oos_clean = []
    for text in oos:
        key = canonical_example(text)
        if key and key not in owners:
            owners[key] = {OUT_OF_SCOPE}
            oos_clean.append(text)
    doc = {
        "domain": folder.name,
        "intents": [
            {"name": name, "examples": {locale: texts}} for name, texts in sorted(by_intent.items())
        ],
    }
    if oos_clean:
        doc["out_of_scope"] = {locale: oos_clean}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return sum(len(v) for v in by_intent.values()), dropped


def baseline_eval(
    catalog: IntentCatalog, data: EvalSet, threshold: float
) -> dict[str, dict[str, float | int]]:
    """TF-IDF char n-grams (2-5, word-bounded) + logistic regression, same data, same
    metrics; "no intent" when the out_of_scope class wins or top probability < threshold."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    out: dict[str, dict[str, float | int]] = {}
    for loc, intents in sorted(data.items()):
        negatives = catalog.out_of_scope.get(loc, [])
        pairs = catalog.examples(loc) + [(t, OUT_OF_SCOPE) for t in negatives]
        if not pairs:
            continue
        model = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            LogisticRegression(C=10.0, max_iter=2000),
        )
        model.fit([t for t, _ in pairs], [label for _, label in pairs])
        texts = [t for items in intents.values() for t in items]
        gold = [name for name, items in intents.items() for _ in items]
        probs = model.predict_proba(texts)
        classes = list(model.classes_)
        pred = []
        for row in probs:
            i = int(row.argmax())
            ok = classes[i] != OUT_OF_SCOPE and row[i] >= threshold
            pred.append(classes[i] if ok else OUT_OF_SCOPE)
        out[loc] = metrics(gold, pred)
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def dir_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


OLD_REV = "6d7623d"  # "Trained demo intent model": the classifier before issue 12


def old_model_dir(work: Path, rev: str = OLD_REV) -> Path:
    """The intent model committed at ``rev`` (``models/intents``), extracted under ``work``."""
    import subprocess

    from app.settings import PROJECT_ROOT

    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], check=True,
                              capture_output=True).stdout

    version = git("show", f"{rev}:models/intents/current").decode().strip()
    folder = work / f"old-{rev}" / version
    folder.mkdir(parents=True, exist_ok=True)
    names = git("ls-tree", "--name-only", f"{rev}:models/intents/{version}").decode().split()
    for name in names:
        (folder / name).write_bytes(git("show", f"{rev}:models/intents/{version}/{name}"))
    return folder
