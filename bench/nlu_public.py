"""Public intent benchmarks through Hotline's own train/eval code: BANKING77 and CLINC150.

    .venv/bin/python -m bench.nlu_public [--only banking77|clinc150] [--hidden N] [--epochs N]

Reads ``../shared/datasets/`` (skips, saying why, when absent). Each set is written as an
intents folder + an eval file, trained with ``train_folder`` and scored with ``evaluate``,
beside the TF-IDF char n-gram + logistic regression baseline on the same data.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import tempfile
from dataclasses import replace
from pathlib import Path

from app.nlu.evaluate import EvalSet, LocaleEval, evaluate, summary
from app.nlu.intents import OUT_OF_SCOPE, load_intents
from app.nlu.pipeline import DEFAULT_CONFIG, open_classifier, train_folder
from app.nlu.train import TrainConfig
from app.settings import PROJECT_ROOT, Settings
from bench.nlu_common import Timer, baseline_eval, write_intent_folder

DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"


def clean(name: str) -> str:
    """Dataset label -> a valid intent name (``Refund_not_showing_up`` -> lower snake)."""
    return re.sub(r"[^a-z0-9_]", "", name.lower())


def banking77(work: Path) -> tuple[Path, EvalSet, str] | str:
    root = DATASETS / "banking77"
    if not (root / "train.csv").is_file():
        return f"BANKING77 not found at {root}"
    with open(root / "train.csv", encoding="utf-8") as f:
        train = [(r["text"], clean(r["category"])) for r in csv.DictReader(f)]
    with open(root / "test.csv", encoding="utf-8") as f:
        test = [(r["text"], clean(r["category"])) for r in csv.DictReader(f)]
    kept, dropped = write_intent_folder(work / "banking77", "en", train)
    evalset: EvalSet = {"en": {}}
    for text, intent in test:
        evalset["en"].setdefault(intent, []).append(text)
    return work / "banking77", evalset, f"train {kept} kept, {dropped} ambiguous dropped"


def clinc150(work: Path) -> tuple[Path, EvalSet, str] | str:
    path = DATASETS / "clinc150" / "data_full.json"
    if not path.is_file():
        return f"CLINC150 not found at {path}"
    data = json.loads(path.read_text(encoding="utf-8"))
    train = [(t, clean(i)) for t, i in data["train"]]
    oos = [t for t, _ in data["oos_train"]]
    kept, dropped = write_intent_folder(work / "clinc150", "en", train, oos)
    evalset: EvalSet = {"en": {}}
    for text, intent in data["test"]:
        evalset["en"].setdefault(clean(intent), []).append(text)
    evalset["en"][OUT_OF_SCOPE] = [t for t, _ in data["oos_test"]]
    note = f"train {kept} kept, {dropped} ambiguous dropped, {len(oos)} oos_train as background"
    return work / "clinc150", evalset, note


def top1_accuracy(ev: LocaleEval) -> float:
    """Closed-set accuracy as papers report it: the top-ranked intent, no refusal."""
    pairs = [(g, t) for g, t in zip(ev.gold, ev.top_label, strict=True) if g != OUT_OF_SCOPE]
    return sum(g == t for g, t in pairs) / len(pairs) if pairs else 0.0


def run(name: str, loaded: tuple[Path, EvalSet, str] | str, settings: Settings,
        config: TrainConfig) -> None:
    if isinstance(loaded, str):
        print(f"{name}: SKIPPED: {loaded}")
        return
    folder, evalset, note = loaded
    model_root = folder.parent / f"{name}-model"
    with Timer() as t_train:
        train_folder(folder, model_root, settings, config)
    classifier = open_classifier(model_root, settings)
    with Timer() as t_eval:
        results = evaluate(classifier, evalset)
        ours = summary(results)["by_locale"]["en"]
    top1 = top1_accuracy(results["en"])
    base = baseline_eval(load_intents(folder), evalset, settings.intent_threshold)["en"]
    print(f"\n{name} ({note}); train {t_train.seconds:.0f} s, eval {t_eval.seconds:.0f} s")
    print(f"  top-1 in-scope accuracy (argmax, no refusal threshold): {top1:.4f}")
    print(f"  {'':28} {'in-scope acc':>12} {'oos recall':>10} {'macro F1':>9} {'n':>6}")
    for label, m in (("hotline (encoder+ngrams)", ours), ("baseline tfidf+logreg", base)):
        print(f"  {label:28} {m['in_scope_accuracy']:>12.4f} {m['oos_recall']:>10.4f}"
              f" {m['macro_f1']:>9.4f} {m['n']:>6}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["banking77", "clinc150"])
    parser.add_argument("--hidden", type=int, default=DEFAULT_CONFIG.hidden)
    parser.add_argument("--epochs", type=int, default=DEFAULT_CONFIG.epochs)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=None)
    args = parser.parse_args()
    config = replace(DEFAULT_CONFIG, hidden=args.hidden, epochs=args.epochs,
                     calibration_folds=args.folds)
    overrides = {} if args.threshold is None else {"intent_threshold": args.threshold}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    print(f"config: {config}; threshold {settings.intent_threshold},"
          f" margin {settings.intent_margin}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "banking77"):
            run("banking77", banking77(work), settings, config)
        if args.only in (None, "clinc150"):
            run("clinc150", clinc150(work), settings, config)


if __name__ == "__main__":
    main()
