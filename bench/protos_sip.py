"""PROTOS c07-sip, all 4,527 cases, against a real ``hotline serve`` with SIP on.

    python -m bench.protos_sip [--batch 100] [--limit N]

Prints: cases sent, the server's answers by class, OPTIONS liveness after every batch, the
malformed-input counters from /metrics, whether a valid call completes after the run, and the
time taken. Baseline in the same run: the same liveness check before any case is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from app.media.audio import Pcm
from app.settings import PROJECT_ROOT
from app.sip.simcaller import place_sip_call
from tests.helpers.protos import run_protos
from tests.sip.conftest import KO_NUMBER, start_server, stop_server

CASES = PROJECT_ROOT.parent / "shared" / "datasets" / "protos-sip-c07" / "cases"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    if not CASES.is_dir():
        raise SystemExit(f"PROTOS cases not found at {CASES}")
    cases = sorted(CASES.iterdir())
    if args.limit:
        cases = cases[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), HOTLINE_SIP_RATE_LIMIT_PER_S="100000",
                              HOTLINE_SIP_MAX_CALLS="1000", HOTLINE_RTP_TIMEOUT_S="5",
                              HOTLINE_INTENT_MODEL_DIR=str(Path(tmp) / "no-intents"))
        try:
            rss_before_kb = _rss_kb(server.proc.pid)
            started = time.monotonic()
            run = asyncio.run(run_protos(cases, server.sip_port, number=KO_NUMBER,
                                         batch=args.batch))
            call = asyncio.run(place_sip_call(
                "127.0.0.1", server.sip_port, Pcm(bytes(8000 * 2 * 6), 8000),
                number=KO_NUMBER, dtmf=[("1", 4.0)], grace_s=8, timeout_s=90))
            alive = server.proc.poll() is None
            malformed = {kind: server.metric("hotline_sip_malformed_total", f'kind="{kind}"')
                         for kind in ("sip", "sdp", "rtp")}
            rss_kb = _rss_kb(server.proc.pid)
        finally:
            stop_server(server.proc)
    print(f"baseline: OPTIONS answered before any case: {run.alive_before}; "
          f"RSS {rss_before_kb / 1024:.0f} MiB")
    print(f"cases sent: {run.cases} in {run.elapsed_s:.1f} s "
          f"({run.cases / max(run.elapsed_s, 1e-9):.0f}/s), batch {args.batch}")
    print(f"OPTIONS answered after each batch: {run.batches_ok}/{run.batches}"
          + (f" (first silent after {run.first_silent_case})" if run.first_silent_case else ""))
    print(f"answers received by class: {dict(sorted(run.responses.items()))}")
    print(f"malformed input counted (/metrics): {malformed}")
    print(f"server alive after the run: {alive}; RSS {rss_kb / 1024:.0f} MiB")
    print(f"valid call after the run: answered={call.dial.answered} ended_by={call.ended_by} "
          f"(total {time.monotonic() - started:.0f} s)")


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    main()
