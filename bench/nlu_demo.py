"""Demo hotline intents: training time, model size, RSS, predict latency, held-out accuracy
beside the TF-IDF char n-gram + logistic regression baseline trained on the same data.

    .venv/bin/python -m bench.nlu_demo [--data intents] [--n 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from app.nlu.classifier import IntentClassifier
from app.nlu.evaluate import evaluate, load_eval_files, summary
from app.nlu.intents import load_intents
from app.nlu.pipeline import get_encoder, open_classifier, train_folder
from app.settings import PROJECT_ROOT, Settings
from bench.nlu_common import Timer, baseline_eval, dir_size_mb, rss_mb


def latency(
    classifier: IntentClassifier, texts: list[tuple[str, str]]
) -> tuple[float, float, float]:
    """p50, p95 wall ms and mean CPU ms per ``predict`` call."""
    predict = classifier.predict
    for text, loc in texts[:5]:
        predict(text, loc)
    wall: list[float] = []
    cpu: list[float] = []
    for text, loc in texts:
        w0, c0 = time.perf_counter(), time.thread_time()
        predict(text, loc)
        wall.append(1000 * (time.perf_counter() - w0))
        cpu.append(1000 * (time.thread_time() - c0))
    wall.sort()
    return wall[len(wall) // 2], wall[int(len(wall) * 0.95) - 1], statistics.mean(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT / "intents")
    parser.add_argument("--n", type=int, default=200, help="utterances timed")
    args = parser.parse_args()
    heldout = load_eval_files(sorted((args.data / "tests").glob("*.y*ml")))
    rss_before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", intent_model_dir=Path(tmp) / "models")
        with Timer() as t_load:
            get_encoder(settings)
        with Timer() as t_cold:
            folder = train_folder(args.data, settings.intent_model_path, settings)
        with Timer() as t_warm:  # embeddings cached: what retraining after an edit costs
            folder = train_folder(args.data, settings.intent_model_path, settings)
        classifier = open_classifier(settings.intent_model_path, settings)
        ours = summary(evaluate(classifier, heldout))["by_locale"]
        texts = [(t, loc) for loc, ints in heldout.items() for ts in ints.values() for t in ts]
        p50, p95, cpu = latency(classifier, texts[: args.n])
        size = dir_size_mb(folder)
    catalog = load_intents(args.data)
    base = baseline_eval(catalog, heldout, settings.intent_threshold)
    base_argmax = baseline_eval(catalog, heldout, 0.0)
    print(f"encoder load {t_load.seconds:.1f} s; training: cold (embeddings computed) "
          f"{t_cold.seconds:.1f} s, warm (cached) {t_warm.seconds:.1f} s")
    print(f"model size on disk {size:.2f} MB; max RSS {rss_mb():.0f} MB "
          f"(before loading: {rss_before:.0f} MB)")
    print(f"predict latency over {min(args.n, len(texts))} utterances: p50 {p50:.1f} ms, "
          f"p95 {p95:.1f} ms wall; mean CPU {cpu:.1f} ms (2 shared cores: wall is noisy)")
    print(f"\nheld-out (threshold {settings.intent_threshold}, margin {settings.intent_margin})")
    print(f"  {'locale':6} {'system':26} {'in-scope acc':>12} {'oos recall':>10} "
          f"{'macro F1':>9} {'n':>5}")
    for loc in sorted(ours):
        for label, m in (("hotline (encoder+ngrams)", ours[loc]),
                         ("baseline tfidf+logreg", base[loc]),
                         ("baseline, no threshold", base_argmax[loc])):
            print(f"  {loc:6} {label:26} {m['in_scope_accuracy']:>12.4f} {m['oos_recall']:>10.4f}"
                  f" {m['macro_f1']:>9.4f} {m['n']:>5}")


if __name__ == "__main__":
    main()
