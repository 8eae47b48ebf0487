"""Evaluation of a trained classifier on a test file, the figures product teams read.

Test file (YAML): ``{<locale>: {<intent name | out_of_scope>: [utterance, ...]}}``.

- in-scope accuracy: share of in-scope utterances that came back as exactly their intent
  (a wrong intent and a refusal are both errors);
- oos recall: share of ``out_of_scope`` utterances that came back as no intent;
- macro F1: over the gold labels, "no intent" counting as the ``out_of_scope`` label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.metrics import f1_score

from app.nlu.classifier import IntentClassifier
from app.nlu.intents import OUT_OF_SCOPE
from app.nlu.text import base_locale

EvalSet = dict[str, dict[str, list[str]]]


class EvalFileError(ValueError):
    pass


def load_eval_file(path: Path) -> EvalSet:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 0
        raise EvalFileError(f"{path}:{line}: invalid YAML: {exc.problem}") from exc
    if not isinstance(data, dict) or not data:
        raise EvalFileError(f"{path}: expected {{locale: {{intent: [utterance, ...]}}}}")
    out: EvalSet = {}
    for loc, intents in data.items():
        if not isinstance(intents, dict):
            raise EvalFileError(f"{path}: locale {loc!r} must map intent names to lists")
        for name, items in intents.items():
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise EvalFileError(f"{path}: {loc}.{name} must be a list of strings")
            out.setdefault(base_locale(str(loc)), {}).setdefault(str(name), []).extend(items)
    return out


def load_eval_files(paths: list[Path]) -> EvalSet:
    merged: EvalSet = {}
    for path in paths:
        for loc, intents in load_eval_file(path).items():
            for name, items in intents.items():
                merged.setdefault(loc, {}).setdefault(name, []).extend(items)
    return merged


@dataclass
class LocaleEval:
    locale: str
    gold: list[str] = field(default_factory=list)  # intent or OUT_OF_SCOPE
    pred: list[str] = field(default_factory=list)  # intent or OUT_OF_SCOPE
    texts: list[str] = field(default_factory=list)
    top_label: list[str] = field(default_factory=list)
    top_conf: list[float] = field(default_factory=list)

    def metrics(self) -> dict[str, float | int]:
        return metrics(self.gold, self.pred)

    def confusions(self, limit: int = 10) -> list[tuple[str, str, int]]:
        pairs = Counter((g, p) for g, p in zip(self.gold, self.pred, strict=True) if g != p)
        return [(g, p, n) for (g, p), n in pairs.most_common(limit)]


def metrics(gold: list[str], pred: list[str]) -> dict[str, float | int]:
    in_scope = [(g, p) for g, p in zip(gold, pred, strict=True) if g != OUT_OF_SCOPE]
    oos = [p for g, p in zip(gold, pred, strict=True) if g == OUT_OF_SCOPE]
    labels = sorted(set(gold))
    f1 = f1_score(gold, pred, labels=labels, average="macro", zero_division=0) if gold else 0.0
    return {
        "in_scope_accuracy": round(sum(g == p for g, p in in_scope) / len(in_scope), 4)
        if in_scope else 0.0,
        "oos_recall": round(sum(p == OUT_OF_SCOPE for p in oos) / len(oos), 4) if oos else 0.0,
        "macro_f1": round(float(f1), 4),
        "n": len(gold),
    }


def evaluate(classifier: IntentClassifier, data: EvalSet) -> dict[str, LocaleEval]:
    results: dict[str, LocaleEval] = {}
    for loc, intents in sorted(data.items()):
        ev = LocaleEval(loc)
        texts = [t for items in intents.values() for t in items]
        gold = [name for name, items in intents.items() for _ in items]
        for text, g, res in zip(texts, gold, classifier.predict_many(texts, loc), strict=True):
            ev.texts.append(text)
            ev.gold.append(g)
            ev.pred.append(res.intent or OUT_OF_SCOPE)
            top = res.ranking[0] if res.ranking else None
            ev.top_label.append(top.intent if top else OUT_OF_SCOPE)
            ev.top_conf.append(top.confidence if top else 0.0)
        results[loc] = ev
    return results


def summary(results: dict[str, LocaleEval]) -> dict[str, Any]:
    """The ``--json`` object: ``{"by_locale": {loc: metrics}, "overall": metrics}``."""
    gold = [g for ev in results.values() for g in ev.gold]
    pred = [p for ev in results.values() for p in ev.pred]
    return {
        "by_locale": {loc: ev.metrics() for loc, ev in results.items()},
        "overall": metrics(gold, pred),
    }


def reliability(ev: LocaleEval, bins: int = 10) -> tuple[list[tuple[float, float, int]], float]:
    """(mean confidence, accuracy, count) per bin for in-scope items, and the ECE."""
    conf = np.array([c for c, g in zip(ev.top_conf, ev.gold, strict=True) if g != OUT_OF_SCOPE])
    correct = np.array([
        t == g for t, g in zip(ev.top_label, ev.gold, strict=True) if g != OUT_OF_SCOPE
    ], dtype=float)
    rows: list[tuple[float, float, int]] = []
    ece = 0.0
    if len(conf) == 0:
        return rows, ece
    edges = np.linspace(0.0, 1.0, bins + 1)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            rows.append((float(conf[mask].mean()), float(correct[mask].mean()), int(mask.sum())))
            ece += mask.mean() * abs(conf[mask].mean() - correct[mask].mean())
    return rows, round(float(ece), 4)


def write_report(results: dict[str, LocaleEval], report_dir: Path) -> list[Path]:
    """Confusion-matrix and reliability PNGs per locale (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    report_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for loc, ev in results.items():
        labels = sorted(set(ev.gold) | set(ev.pred))
        cm = confusion_matrix(ev.gold, ev.pred, labels=labels)
        size = max(6.0, 0.35 * len(labels))
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(f"confusion matrix ({loc})")
        if len(labels) <= 40:
            for (i, j), v in np.ndenumerate(cm):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=6)
        fig.tight_layout()
        path = report_dir / f"confusion_{loc}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
        rows, ece = reliability(ev)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        if rows:
            ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-", label="model")
        ax.set_xlabel("top confidence")
        ax.set_ylabel("accuracy (in-scope)")
        ax.set_title(f"reliability ({loc}), ECE={ece:.3f}")
        ax.legend()
        fig.tight_layout()
        path = report_dir / f"reliability_{loc}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def threshold_sweep(
    classifier: IntentClassifier, data: EvalSet, thresholds: list[float],
) -> dict[str, list[tuple[float, float, float]]]:
    """(threshold, in-scope accuracy, oos recall) per locale, probabilities computed once
    and decided again at each threshold (the classifier's margin and fast path kept)."""
    from dataclasses import replace

    out: dict[str, list[tuple[float, float, float]]] = {}
    for loc, intents in sorted(data.items()):
        texts = [t for items in intents.values() for t in items]
        gold = [name for name, items in intents.items() for _ in items]
        probs = classifier.probabilities(texts, loc)
        labels = classifier.locales[loc].labels
        rows = []
        for thr in thresholds:
            rule = replace(classifier.decision, threshold=thr)
            pred = [classifier.decide(_blank(t, loc), p, labels, rule).intent or OUT_OF_SCOPE
                    for t, p in zip(texts, probs, strict=True)]
            m = metrics(gold, pred)
            rows.append((thr, float(m["in_scope_accuracy"]), float(m["oos_recall"])))
        out[loc] = rows
    return out


def _blank(text: str, loc: str) -> Any:
    from app.events import IntentResult

    return IntentResult(text=text, locale=loc, intent=None, confidence=0.0)
