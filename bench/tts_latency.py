"""TTS time to first 20 ms chunk: Hotline's worker + cache, against a naive baseline.

    .venv/bin/python -m bench.tts_latency [--prompts N] [--rate-hz 8000|16000]

For each locale (en, zh), N distinct two-sentence prompts (a realistic "your order N ..."):

- ``uncached``: ``TtsService.stream`` on a prompt never rendered (worker renders sentence 1,
  sentence 2 renders while sentence 1 plays);
- ``cached``: the same prompts again (disk cache, no worker);
- ``baseline``: what a naive implementation does per prompt in the same run: spawn
  ``espeak-ng`` for the whole text, read its WAV, resample, cut the first chunk.

Prints p50/p95 in milliseconds. Timings on a shared 2-core box are noisy: read ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from app.log import configure_logging
from app.media.audio import frames, read_wav, resample
from app.settings import Settings
from app.tts.service import TtsService
from app.tts.text import prepare

TEMPLATES = {
    "en": "Your order number {n} has shipped. It should arrive within three working days.",
    "zh": "您的订单号是{n}，已经发货。预计三个工作日内送达。",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def first_chunk_ms(tts: TtsService, text: str, locale: str, rate_hz: int) -> float:
    start = time.perf_counter()
    stream = tts.stream(text, locale, rate_hz)
    try:
        await anext(stream)
        return 1000 * (time.perf_counter() - start)
    finally:
        await stream.aclose()


def baseline_ms(text: str, voice: str, wpm: int, rate_hz: int, tmp: Path) -> float:
    start = time.perf_counter()
    wav = tmp / "baseline.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), prepare(text, voice)],
        check=True, capture_output=True,
    )
    pcm = read_wav(wav)
    next(frames(resample(pcm.data, pcm.sample_rate_hz, rate_hz), rate_hz))
    return 1000 * (time.perf_counter() - start)


def row(name: str, values: list[float]) -> str:
    return (f"  {name:<10} p50 {statistics.median(values):7.1f} ms   "
            f"p95 {pct(values, 0.95):7.1f} ms   (n={len(values)})")


async def run(prompts: int, rate_hz: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", log_json=False)
        start = time.perf_counter()
        async with TtsService(settings) as tts:
            print(f"worker cold start: {1000 * (time.perf_counter() - start):.0f} ms "
                  f"(fresh interpreter + pyttsx3 + espeak-ng, to its ready line)")
            await tts.synthesize("Warm up.", "en", rate_hz)
            for locale, template in TEMPLATES.items():
                texts = [template.format(n=40_000 + 37 * i) for i in range(prompts)]
                voice = tts.voice_for(locale)
                uncached = [await first_chunk_ms(tts, t, locale, rate_hz) for t in texts]
                cached = [await first_chunk_ms(tts, t, locale, rate_hz) for t in texts]
                base = [
                    await asyncio.to_thread(
                        baseline_ms, t, voice, settings.tts_rate_wpm, rate_hz, Path(tmp)
                    )
                    for t in texts
                ]
                print(f"{locale} ({voice}) at {rate_hz} Hz, time to first 20 ms chunk:")
                print(row("uncached", uncached))
                print(row("cached", cached))
                print(row("baseline", base) + "  (espeak-ng per request, whole text)")
            print(f"worker requests: {tts.worker_stats.requests}, "
                  f"cache hits: {tts.stats.cache_hits}, misses: {tts.stats.cache_misses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=20, help="prompts per locale (1..200)")
    parser.add_argument("--rate-hz", type=int, default=8000)
    args = parser.parse_args()
    if not 1 <= args.prompts <= 200:
        parser.error("--prompts must be 1..200")
    configure_logging("WARNING", json_logs=False)
    asyncio.run(run(args.prompts, args.rate_hz))


if __name__ == "__main__":
    main()
