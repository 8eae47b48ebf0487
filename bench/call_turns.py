"""Live-call figures over real WebRTC: ``python -m bench.call_turns [--levels 1,5,10,15]``.

A real ``hotline serve`` runs as a separate process (the Korean test flow and the Korean Vosk
test model, espeak TTS); this process places N concurrent aiortc calls. Each caller is silent
through the greeting and menu, says "상담원" (agent), and stays on through the queue message.

Printed per concurrency level:
- turn latency: end of the caller's speech -> first bot audio packet sent (server-side
  ``turn_latency`` events; endpointing silence included), p50/p95;
- set-up time (offer -> connected), p50/p95;
- audio gaps (bot audio interrupted because the next chunk was late) and late frames, from the
  server's Prometheus counters;
- server memory: RSS before the calls and at the end of the level, per call.
The single-call level is the baseline the loaded levels are compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from pathlib import Path

import httpx

from app.call.caller import place_call
from app.media.audio import Pcm
from tests.helpers.auth import ADMIN
from tests.helpers.server import KO_NUMBER, free_port, serve_ko, wait_ready

NUMBER = KO_NUMBER
LEAD_SILENCE_S = 11.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _caller_audio() -> Pcm:
    from tests.helpers.speech import espeak_pcm

    speech = espeak_pcm("상담원", "ko", 16_000)
    silence = b"\x00" * int(LEAD_SILENCE_S * 16_000) * 2
    tail = b"\x00" * 16_000 * 2 * 6
    return Pcm(silence + speech.data + tail, 16_000)


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def _counter(metrics: str, name: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _level(url: str, n: int, audio: Pcm, pid: int) -> dict[str, float]:
    async with httpx.AsyncClient(headers=ADMIN) as client:  # /metrics needs a token
        before = (await client.get(f"{url}/metrics")).text
        rss_before = _rss_mb(pid)
        results = await asyncio.gather(
            *(place_call(url, audio, hotline_number=NUMBER, timeout_s=60, grace_s=1.0)
              for _ in range(n)),
            return_exceptions=True,
        )
        rss_after = _rss_mb(pid)
        after = (await client.get(f"{url}/metrics")).text
    ok = [r for r in results if not isinstance(r, BaseException)]
    turn_events = [e for r in ok for e in r.events if e.get("type") == "turn_latency"]
    turns = [float(e["ms"]) for e in turn_events]
    processing = [float(e["after_endpoint_ms"]) for e in turn_events]
    setups = [r.setup_s * 1000 for r in ok]
    return {
        "calls": n, "completed": len(ok), "turns": len(turns),
        "turn_p50": _pct(turns, 50), "turn_p95": _pct(turns, 95),
        "proc_p50": _pct(processing, 50), "proc_p95": _pct(processing, 95),
        "setup_p50": _pct(setups, 50), "setup_p95": _pct(setups, 95),
        "gaps": _counter(after, "hotline_outbound_audio_gaps_total")
        - _counter(before, "hotline_outbound_audio_gaps_total"),
        "late": _counter(after, "hotline_outbound_late_frames_total")
        - _counter(before, "hotline_outbound_late_frames_total"),
        "rss_mb": rss_after, "per_call_mb": (rss_after - rss_before) / max(n, 1),
    }


async def main_async(levels: list[int]) -> None:
    audio = _caller_audio()
    with tempfile.TemporaryDirectory() as tmp_dir:
        port = free_port()
        server = serve_ko(Path(tmp_dir), port, HOTLINE_QUEUE_MAX_WAIT_S="4",
                          HOTLINE_LOG_LEVEL="WARNING")
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(url, server)
            await _level(url, 1, audio, server.pid)  # warm-up: prompts cached, models warm
            rows = [await _level(url, n, audio, server.pid) for n in levels]
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{'calls':>5} {'ok':>3} {'turns':>5} {'turn p50':>9} {'turn p95':>9} "
          f"{'proc p50':>9} {'proc p95':>9} "
          f"{'setup p50':>9} {'setup p95':>9} {'gaps':>5} {'late':>6} {'RSS MB':>7} {'MB/call':>7}")
    for r in rows:
        print(f"{r['calls']:>5.0f} {r['completed']:>3.0f} {r['turns']:>5.0f} "
              f"{r['turn_p50']:>9.0f} {r['turn_p95']:>9.0f} {r['proc_p50']:>9.0f} "
              f"{r['proc_p95']:>9.0f} {r['setup_p50']:>9.0f} "
              f"{r['setup_p95']:>9.0f} {r['gaps']:>5.0f} {r['late']:>6.0f} "
              f"{r['rss_mb']:>7.0f} {r['per_call_mb']:>7.1f}")
    clean = [r["calls"] for r in rows if r["gaps"] == 0 and r["completed"] == r["calls"]]
    print(f"most concurrent calls with no audio gaps: {max(clean) if clean else 0:.0f}")
    base = rows[0]
    for r in rows[1:]:
        ratio = r["turn_p50"] / base["turn_p50"] if base["turn_p50"] else float("nan")
        print(f"turn p50 at {r['calls']:.0f} calls = {ratio:.2f}x the {base['calls']:.0f}-call "
              f"baseline")
    print("(ms; turn = end of the caller's speech -> first bot audio sent, the endpointing "
          "pause included; proc = end-of-turn decision -> first bot audio)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,5,10", help="concurrency levels, comma-separated")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if any(n < 1 or n > 40 for n in levels):
        parser.error("levels must be between 1 and 40 calls")
    asyncio.run(main_async(levels))


if __name__ == "__main__":
    main()
