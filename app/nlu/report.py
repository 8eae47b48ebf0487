"""The evaluation report the console shows: a model on the held-out files
(``<intents>/tests/*.yaml``) per locale, computed with ``app.nlu.evaluate``: per-intent
precision, recall, F1 and support (scikit-learn, "no intent" counted as ``out_of_scope``),
the confusion matrix (rows: the gold label, columns: the predicted one) and the top
confusions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from app.nlu.classifier import IntentClassifier
from app.nlu.evaluate import LocaleEval, evaluate, load_eval_files

TOP_CONFUSIONS = 5


def locale_report(ev: LocaleEval) -> dict[str, Any]:
    labels = sorted(set(ev.gold) | set(ev.pred))
    precision, recall, f1, support = precision_recall_fscore_support(
        ev.gold, ev.pred, labels=labels, zero_division=0)
    top = ev.confusions(TOP_CONFUSIONS)
    matrix = confusion_matrix(ev.gold, ev.pred, labels=labels).tolist()
    return {
        "metrics": ev.metrics(),
        "intents": [{"intent": name, "precision": round(float(p), 4),
                     "recall": round(float(r), 4), "f1": round(float(f), 4),
                     "support": int(s)}
                    for name, p, r, f, s in zip(labels, precision, recall, f1, support,
                                                strict=True)],
        "labels": labels, "matrix": matrix,
        "top_confusions": [{"gold": g, "predicted": p, "count": n} for g, p, n in top],
        "highlight": [f"{g}→{p}" for g, p, _ in top],  # the matrix cells to highlight
    }


def evaluation_report(classifier: IntentClassifier, tests_dir: Path) -> dict[str, Any]:
    """``{"version", "files", "by_locale": {loc: locale_report}}``; ``ValueError`` (the
    file and reason) when a test file does not load, or when there is none."""
    files = sorted(tests_dir.glob("*.y*ml"))
    if not files:
        raise ValueError(f"no held-out test files under {tests_dir}")
    results = evaluate(classifier, load_eval_files(files))
    return {"version": classifier.version, "files": [p.name for p in files],
            "by_locale": {loc: locale_report(ev) for loc, ev in results.items()}}
