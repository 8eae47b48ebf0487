"""Soak: N concurrent calls, again and again, for M minutes; does the server leak?

    python -m bench.soak [--calls 10] [--minutes 20] [--codec pcmu]

One ``hotline serve`` (this tree, the Korean test flow: the real Vosk decoder, espeak, the
event log) and caller processes (``bench.callers``: real WebRTC callers, PCMU) that keep
``--calls`` calls up: each round places that many concurrent calls (each ~20 s: silence,
one spoken request, the bot's answer) and the next round starts when they end. Between
rounds, with no call up, it samples the server's process tree: resident memory, open file
descriptors, threads, and asyncio tasks on its loop (``hotline_event_loop_tasks``), and
prints one line per round. The verdict compares the last idle sample with the first one
after the warm-up round (the first round fills caches and pools): RSS growth (the issue's
target: <= 5 %), and any growth of descriptors or tasks (target: none).

Bounded: it stops after ``--minutes`` (and at most ``--max-rounds``); SIGTERM stops the
server and the callers.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import httpx

from bench.call_turns import PROJECT_ROOT, _interrupted, caller_audio, counter, server_from
from bench.callers import place_calls, process_tree, rss_mb
from tests.helpers.auth import ADMIN, ADMIN_TOKEN
from tests.helpers.server import KO_NUMBER

CALLS_PER_CALLER_PROC = 8


@dataclass
class Sample:
    round: int
    at_s: float
    rss_mb: float
    pss_mb: float
    fds: int
    threads: int
    tasks: float
    calls_ok: int
    calls_failed: int


def pss_mb(pids: list[int]) -> float:
    """Proportional set size of the processes (/proc/PID/smaps_rollup), in MB: pages shared
    between the zygote's workers (the Vosk models) counted once, unlike RSS."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1000


def _count(path: Path) -> int:
    try:
        return sum(1 for _ in path.iterdir())
    except OSError:
        return 0


async def sample(url: str, pid: int, round_no: int, started: float, ok: int,
                 failed: int) -> Sample:
    """The server's process tree at rest (no call up)."""
    async with httpx.AsyncClient(timeout=60, headers=ADMIN) as client:
        for _ in range(100):  # wait until the last call has left the server
            metrics = (await client.get(f"{url}/metrics")).text
            if counter(metrics, "hotline_calls_active") == 0:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # let finished tasks be collected
        metrics = (await client.get(f"{url}/metrics")).text
    tree = process_tree(pid)
    return Sample(
        round=round_no, at_s=time.monotonic() - started, rss_mb=rss_mb(tree),
        pss_mb=pss_mb(tree),
        fds=sum(_count(Path(f"/proc/{p}/fd")) for p in tree),
        threads=sum(_count(Path(f"/proc/{p}/task")) for p in tree),
        tasks=counter(metrics, "hotline_event_loop_tasks"), calls_ok=ok, calls_failed=failed,
    )


async def soak(url: str, pid: int, calls: int, minutes: float, max_rounds: int,
               codec: str) -> list[Sample]:
    audio = caller_audio()
    procs = max(1, -(-calls // CALLS_PER_CALLER_PROC))
    shares = [calls // procs + (1 if i < calls % procs else 0) for i in range(procs)]
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    deadline = started + 60 * minutes
    samples: list[Sample] = []
    print(f"{'round':>5} {'min':>6} {'ok':>4} {'fail':>4} {'RSS MB':>8} {'PSS MB':>8} {'fds':>5} "
          f"{'threads':>7} {'tasks':>6}", flush=True)
    with ProcessPoolExecutor(max_workers=procs, mp_context=get_context("spawn")) as pool:
        for round_no in range(max_rounds):
            if round_no >= 3 and time.monotonic() >= deadline:  # a verdict needs 3
                break
            batches = await asyncio.gather(*(
                loop.run_in_executor(pool, place_calls, url, KO_NUMBER, share, audio[0],
                                     audio[1], codec, 120.0) for share in shares))
            results = [r for batch in batches for r in batch["calls"]]
            failed = sum(1 for r in results if "error" in r)
            s = await sample(url, pid, round_no, started, len(results) - failed, failed)
            samples.append(s)
            print(f"{s.round:>5} {s.at_s / 60:>6.1f} {s.calls_ok:>4} {s.calls_failed:>4} "
                  f"{s.rss_mb:>8.1f} {s.pss_mb:>8.1f} {s.fds:>5} {s.threads:>7} {s.tasks:>6.0f}",
                  flush=True)
    return samples


def verdict(samples: list[Sample], calls: int) -> None:
    if len(samples) < 3:
        print("too few rounds for a verdict (run longer)")
        return
    base, last = samples[1], samples[-1]  # round 0 warms caches and pools
    growth = 100 * (last.pss_mb - base.pss_mb) / base.pss_mb
    total_ok = sum(s.calls_ok for s in samples)
    total_failed = sum(s.calls_failed for s in samples)
    print(f"\n{len(samples)} rounds of {calls} concurrent calls over "
          f"{last.at_s / 60:.1f} min: {total_ok} calls ok, {total_failed} failed")
    print(f"memory (server + workers, PSS) after round 1 {base.pss_mb:.1f} MB, at the end "
          f"{last.pss_mb:.1f} MB: growth {growth:+.1f} % (target <= 5 %) "
          f"[{'ok' if growth <= 5 else 'OVER'}]; RSS (shared pages counted per process) "
          f"{base.rss_mb:.1f} -> {last.rss_mb:.1f} MB")
    for name, a, b in (("file descriptors", base.fds, last.fds),
                       ("event-loop tasks", base.tasks, last.tasks)):
        print(f"{name}: {a:.0f} -> {b:.0f} ({b - a:+.0f}) [{'ok' if b <= a else 'GREW'}]")
    print(f"threads: {base.threads} -> {last.threads} (thread pools start lazily up to "
          f"their size; a leak keeps growing round after round)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--max-rounds", type=int, default=200)
    parser.add_argument("--codec", choices=("pcmu", "opus"), default="pcmu")
    args = parser.parse_args()
    if not 1 <= args.calls <= 64 or not 0 < args.minutes <= 240:
        parser.error("--calls 1..64, --minutes up to 240")
    signal.signal(signal.SIGTERM, _interrupted)
    env = {"HOTLINE_MAX_CALLS": str(max(16, args.calls)),
           "HOTLINE_WEBRTC_OFFER_RATE": "100000/minute",
           "HOTLINE_AUTH_BOOTSTRAP_TOKEN": ADMIN_TOKEN}
    with tempfile.TemporaryDirectory() as tmp, \
            server_from(PROJECT_ROOT, Path(tmp) / "soak", env) as (url, pid):
        print(f"server pid {pid} at {url}; {args.calls} calls per round for "
              f"{args.minutes:g} min", flush=True)
        samples = asyncio.run(soak(url, pid, args.calls, args.minutes, args.max_rounds,
                                   args.codec))
    verdict(samples, args.calls)


if __name__ == "__main__":
    main()
