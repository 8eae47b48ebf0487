"""Live SIP figures against a real ``hotline serve`` (Korean test flow and model, espeak TTS).

    python -m bench.sip_calls [--levels 1,8,16,24] [--rates 5,10,20,40] [--flood 150]

1. Concurrent calls (this process's SIP/RTP simulated callers): silent through the greeting
   and menu, say "상담원", stay on through the queue message. Per level: turn latency p50/p95
   (end of the caller's speech -> first bot audio sent, as ``bench.call_turns``), set-up time,
   audio gaps and late frames from the server's counters. The 1-call level is the baseline.
2. Set-up rate (RFC 7501 style, sipp ``uac_setup.xml``: INVITE -> 200 -> ACK -> BYE) at rising
   offered rates; the highest rate with 0 failed calls.
3. Flood: sipp offers ``--flood`` INVITEs at 100/s, each held 6 s (``uac_burst.xml``), against
   ``sip_max_calls=100``: how many calls are up when the first 503 is sent, and how many get 503.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.media.audio import Pcm
from app.sip.simcaller import place_sip_call
from tests.helpers.auth import ADMIN
from tests.sip.conftest import (
    KO_NUMBER,
    SCENARIOS,
    SipServer,
    free_udp_port,
    start_server,
    stop_server,
)

LEAD_SILENCE_S = 11.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _counter(metrics: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def _caller_audio() -> Pcm:
    from tests.helpers.speech import espeak_pcm

    speech = espeak_pcm("상담원", "ko", 8000)
    return Pcm(bytes(int(LEAD_SILENCE_S * 8000) * 2) + speech.data + bytes(8000 * 2 * 6), 8000)


async def _level(server: SipServer, n: int, audio: Pcm) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=30, headers=ADMIN) as client:  # /metrics: a token
        before = (await client.get(f"{server.url}/metrics")).text
        seen = set(server.call_ids())
        results = await asyncio.gather(*(
            place_sip_call("127.0.0.1", server.sip_port, audio, number=KO_NUMBER, grace_s=1,
                           timeout_s=60) for _ in range(n)), return_exceptions=True)
        await asyncio.sleep(2)
        after = (await client.get(f"{server.url}/metrics")).text
        fresh = [c for c in server.call_ids() if c not in seen]
        events: list[dict[str, Any]] = []
        for call_id in fresh:
            events += (await client.get(f"{server.url}/v1/calls/{call_id}")).json()["events"]
    ok = [r for r in results if not isinstance(r, BaseException) and r.dial.answered]
    turns = [float(e["payload"]["ms"]) for e in events if e["type"] == "turn_latency"]
    setups = [r.setup_s * 1000 for r in ok]
    return {
        "calls": n, "completed": len(ok), "turns": len(turns),
        "turn_p50": _pct(turns, 50), "turn_p95": _pct(turns, 95),
        "setup_p50": _pct(setups, 50), "setup_p95": _pct(setups, 95),
        "gaps": _counter(after, "hotline_outbound_audio_gaps_total")
        - _counter(before, "hotline_outbound_audio_gaps_total"),
        "late": _counter(after, "hotline_outbound_late_frames_total")
        - _counter(before, "hotline_outbound_late_frames_total"),
    }


def _sipp(server: SipServer, scenario: str, rate: int, calls: int, work: Path) -> tuple[int, str]:
    result = subprocess.run(
        ["sipp", "-sf", str(SCENARIOS / scenario), "-s", KO_NUMBER, "-m", str(calls),
         "-r", str(rate), "-l", str(calls), "-i", "127.0.0.1", "-p", str(free_udp_port()),
         "-mi", "127.0.0.1", "-mp", str(free_udp_port()), "-nostdin", "-timeout", "120s",
         "-trace_stat", "-trace_rtt", "-rtt_freq", "1", f"127.0.0.1:{server.sip_port}"],
        cwd=work, capture_output=True, text=True, timeout=240)
    return result.returncode, result.stdout + result.stderr


def _setup_rates(server: SipServer, rates: list[int], work: Path) -> list[tuple[int, int, str]]:
    rows = []
    for rate in rates:
        calls = rate * 5
        code, _ = _sipp(server, "uac_setup.xml", rate, calls, work)
        rtts = [f for f in work.glob("*_rtt.csv")]
        p95 = ""
        if rtts:
            values = []
            for line in rtts[-1].read_text().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2:  # Date_ms;response_time_ms;rtd_no
                    values.append(float(parts[1]))
            if values:
                p95 = f"{_pct(values, 50):.0f}/{_pct(values, 95):.0f} ms"
            for f in rtts:
                f.unlink()
        rows.append((rate, code, p95))
        if code != 0:
            break
        time.sleep(8)  # the last calls' sessions finish
    return rows


def _print_levels(rows: list[dict[str, float]], levels: str) -> None:
    print(f"{'calls':>5} {'ok':>3} {'turns':>5} {'turn p50':>9} {'turn p95':>9} "
          f"{'setup p50':>9} {'setup p95':>9} {'gaps':>5} {'late':>6}", flush=True)
    for r in rows:
        print(f"{r['calls']:>5.0f} {r['completed']:>3.0f} {r['turns']:>5.0f} "
              f"{r['turn_p50']:>9.0f} {r['turn_p95']:>9.0f} {r['setup_p50']:>9.1f} "
              f"{r['setup_p95']:>9.1f} {r['gaps']:>5.0f} {r['late']:>6.0f}")
    clean = [r["calls"] for r in rows if r["gaps"] == 0 and r["completed"] == r["calls"]]
    print(f"most concurrent SIP calls with 0 audio gaps: {max(clean) if clean else 0:.0f} "
          f"(levels tried: {levels}; the 1-call level is the baseline)", flush=True)


def _print_setup(setup: list[tuple[int, int, str]]) -> None:
    print("set-up rate (sipp INVITE->200->ACK->BYE, 5 s at each rate; 200 OK time p50/p95): "
          + ", ".join(f"{rate}/s: {'ok' if code == 0 else 'FAILED'} {p95}"
                      for rate, code, p95 in setup))
    best = [rate for rate, code, _ in setup if code == 0]
    print(f"highest set-up rate with 0 failures: {max(best) if best else 0}/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,16,24")
    parser.add_argument("--rates", default="5,10,20,40")
    parser.add_argument("--flood", type=int, default=150)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x]
    rates = [int(x) for x in args.rates.split(",") if x]
    audio = _caller_audio()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = start_server(work / "server", HOTLINE_QUEUE_MAX_WAIT_S="4",
                              HOTLINE_LOG_LEVEL="WARNING", HOTLINE_SIP_MAX_CALLS="100",
                              HOTLINE_SIP_RATE_LIMIT_PER_S="1000",
                              HOTLINE_SIP_RATE_LIMIT_BURST="1000",
                              HOTLINE_INTENT_MODEL_DIR=str(work / "no-intents"))
        try:
            asyncio.run(_level(server, 1, audio))  # warm-up: prompts cached
            rows = [asyncio.run(_level(server, n, audio)) for n in levels]
            _print_levels(rows, args.levels)
            setup = _setup_rates(server, rates, work)
            _print_setup(setup)
            time.sleep(8)
            before = server.metric("hotline_sip_rejected_total", 'reason="overload"')
            code, out = _sipp(server, "uac_burst.xml", 100, args.flood, work)
            refused = server.metric("hotline_sip_rejected_total", 'reason="overload"') - before
        finally:
            stop_server(server.proc)
    answered = args.flood - refused
    print(f"flood: {args.flood} INVITEs at 100/s held 6 s, sip_max_calls=100: "
          f"{answered:.0f} answered, {refused:.0f} got 503 (503s begin once "
          f"{answered:.0f} calls are up); sipp rc={code}")
    if re.search(r"Failed call\s*\|\s*\d+\s*\|\s*[1-9]", out):
        print("(sipp counted failed calls in the flood: see its output)")


if __name__ == "__main__":
    main()
