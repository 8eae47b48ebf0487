"""Public intent benchmarks through Hotline's own train/eval code: BANKING77 and CLINC150.

    .venv/bin/python -m bench.nlu_public [--only banking77|clinc150] [--seeds 3]
        [--recipe new|old|both] [--hidden N] [--epochs N]

Reads ``../shared/datasets/`` (skips, saying why, when absent). Each set is written as an
intents folder + an eval file, trained with ``train_folder`` and scored with ``evaluate``,
beside the TF-IDF char n-gram + logistic regression baseline on the same data. ``--seeds``
trains that many times (seeds 0..N-1) and prints each run, the mean and the spread;
``--recipe old`` is the classifier before issue 12 (text scheme 1), ``both`` runs the two in
the same process. Figures: top-1 accuracy (argmax, no refusal: what papers report), in-scope
accuracy with refusals counted as errors, oos recall, and a threshold sweep.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from app.nlu.evaluate import EvalSet, LocaleEval, evaluate, summary, threshold_sweep
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


SWEEP = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def recipes(choice: str, base: TrainConfig) -> list[tuple[str, TrainConfig]]:
    old = replace(base, text_scheme=1, fast_head=False, augment_rate=0.0)
    found = {"new": [("new", base)], "old": [("old", old)],
             "both": [("old", old), ("new", base)]}
    return found[choice]


def run(name: str, loaded: tuple[Path, EvalSet, str] | str, settings: Settings,
        config: TrainConfig, seeds: int, label: str) -> None:
    if isinstance(loaded, str):
        print(f"{name}: SKIPPED: {loaded}")
        return
    folder, evalset, note = loaded
    print(f"\n{name} [{label} recipe] ({note})", flush=True)
    rows: list[tuple[float, float, float]] = []
    for seed in range(seeds):
        model_root = folder.parent / f"{name}-{label}-model-{seed}"
        with Timer() as t_train:
            train_folder(folder, model_root, settings, replace(config, seed=seed))
        classifier = open_classifier(model_root, settings)
        with Timer() as t_eval:
            results = evaluate(classifier, evalset)
            ours = summary(results)["by_locale"]["en"]
        top1 = top1_accuracy(results["en"])
        rows.append((top1, float(ours["in_scope_accuracy"]), float(ours["oos_recall"])))
        print(f"  seed {seed}: top-1 (no refusal) {top1:.4f}, in-scope with refusals "
              f"{ours['in_scope_accuracy']:.4f}, oos recall {ours['oos_recall']:.4f}, "
              f"macro F1 {ours['macro_f1']:.4f}; train {t_train.seconds:.0f} s, "
              f"eval {t_eval.seconds:.0f} s", flush=True)
        if seed == 0 and OUT_OF_SCOPE in evalset["en"]:
            print("  threshold sweep (seed 0): threshold, in-scope acc, oos recall")
            for thr, acc, rec in threshold_sweep(classifier, evalset, SWEEP)["en"]:
                print(f"    {thr:.2f}  {acc:.4f}  {rec:.4f}")
    for i, what in enumerate(("top-1 (no refusal)", "in-scope with refusals", "oos recall")):
        vals = [r[i] for r in rows]
        spread = f" (min {min(vals):.4f}, max {max(vals):.4f}, sd " \
                 f"{statistics.stdev(vals):.4f})" if len(vals) > 1 else ""
        print(f"  {what}: mean {statistics.mean(vals):.4f} over {len(vals)} seed(s){spread}")


def baseline(name: str, loaded: tuple[Path, EvalSet, str] | str, settings: Settings) -> None:
    if isinstance(loaded, str):
        return
    folder, evalset, _ = loaded
    base = baseline_eval(load_intents(folder), evalset, settings.intent_threshold)["en"]
    print(f"  {name} baseline tfidf+logreg: in-scope {base['in_scope_accuracy']:.4f}, "
          f"oos recall {base['oos_recall']:.4f}, macro F1 {base['macro_f1']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["banking77", "clinc150"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--recipe", choices=["new", "old", "both"], default="both")
    parser.add_argument("--hidden", type=int, default=DEFAULT_CONFIG.hidden)
    parser.add_argument("--epochs", type=int, default=DEFAULT_CONFIG.epochs)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-fast-head", action="store_true",
                        help="skip training the n-gram fast-path head (halves training time; "
                        "figures then are the full encoder+n-gram head's alone)")
    args = parser.parse_args()
    config = replace(DEFAULT_CONFIG, hidden=args.hidden, epochs=args.epochs,
                     calibration_folds=args.folds, fast_head=not args.no_fast_head)
    overrides = {} if args.threshold is None else {"intent_threshold": args.threshold}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    print(f"config: {config}; threshold {settings.intent_threshold},"
          f" margin {settings.intent_margin}, fast path {settings.intent_fast_threshold}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, loader in (("banking77", banking77), ("clinc150", clinc150)):
            if args.only not in (None, name):
                continue
            loaded = loader(work)
            for label, cfg in recipes(args.recipe, config):
                run(name, loaded, settings, cfg, args.seeds, label)
            if not args.no_baseline:
                baseline(name, loaded, settings)


if __name__ == "__main__":
    main()
