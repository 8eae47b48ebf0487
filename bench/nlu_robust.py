"""Understanding on recognizer-like input: the shipped demo model vs the one before issue 12.

    .venv/bin/python -m bench.nlu_robust [--old-rev 6d7623d] [--seed 0]

Both models are evaluated in the same run on the held-out files (``intents/tests/heldout_*``),
clean and with the seeded noise procedure of ``hotline intents noise`` (app/nlu/noise.py) at
5, 10 and 20%, plus the near-domain hard negatives (``intents/tests/hard_negatives.yaml``)
as their own row, then the threshold sweep of the new model (clean and 10% noise).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from app.nlu.classifier import IntentClassifier
from app.nlu.evaluate import evaluate, load_eval_files, summary, threshold_sweep
from app.nlu.noise import noisy_evalset
from app.nlu.pipeline import open_classifier
from app.settings import PROJECT_ROOT, Settings
from bench.nlu_common import OLD_REV, old_model_dir

RATES = (0.0, 0.05, 0.10, 0.20)
SWEEP = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def rows(name: str, clf: IntentClassifier, held: dict[str, dict[str, list[str]]],
         hard: dict[str, dict[str, list[str]]], seed: int) -> list[str]:
    out = []
    for rate in RATES:
        data = held if rate == 0 else noisy_evalset(held, rate, seed)
        for loc, m in summary(evaluate(clf, data))["by_locale"].items():
            out.append(f"  {loc:3} {name:28} {'clean' if rate == 0 else f'noise {rate:.0%}':10}"
                       f" {m['in_scope_accuracy']:>9.3f} {m['oos_recall']:>10.3f}"
                       f" {m['macro_f1']:>8.3f}")
    for loc, m in summary(evaluate(clf, hard))["by_locale"].items():
        out.append(f"  {loc:3} {name:28} {'near-domain':10} {'-':>9} {m['oos_recall']:>10.3f}"
                   f" {'-':>8}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tests = PROJECT_ROOT / "intents" / "tests"
    held = load_eval_files(sorted(tests.glob("heldout_*.yaml")))
    hard = load_eval_files([tests / "hard_negatives.yaml"])
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        old = open_classifier(old_model_dir(Path(tmp), args.old_rev), settings)
        old.decision = replace(old.decision, fast_threshold=1.01)  # it has no fast head
        new = open_classifier(settings.intent_model_path, settings)
        print(f"threshold {settings.intent_threshold}, margin {settings.intent_margin}, "
              f"fast path {settings.intent_fast_threshold}; noise seed {args.seed}")
        print(f"  {'loc':3} {'model':28} {'text':10} {'in-scope':>9} {'oos recall':>10}"
              f" {'macro F1':>8}")
        lines = rows(f"old ({args.old_rev})", old, held, hard, args.seed)
        lines += rows(f"new ({new.version[:22]})", new, held, hard, args.seed)
        for line in sorted(lines, key=lambda x: x.split()[0]):
            print(line)
    noisy10 = noisy_evalset(held, 0.10, args.seed)
    for label, data in (("clean", held), ("10% noise", noisy10)):
        print(f"\nthreshold sweep, new model, {label}: threshold, in-scope, oos recall")
        for loc, sweep in threshold_sweep(new, data, SWEEP).items():
            print(f"  {loc}: " + "  ".join(f"{t:.1f}: {a:.3f}/{r:.3f}" for t, a, r in sweep))
    print("\nnear-domain hard negatives, new model: threshold, oos recall")
    for loc, sweep in threshold_sweep(new, hard, SWEEP).items():
        print(f"  {loc}: " + "  ".join(f"{t:.1f}: {r:.3f}" for t, _, r in sweep))


if __name__ == "__main__":
    main()
