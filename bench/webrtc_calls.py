"""WebRTC call set-up time p50/p95: ``python -m bench.webrtc_calls [--calls N] [--concurrency C]``.

Set-up = the caller creates its offer -> ``POST /v1/webrtc/offer`` (the server answers with
its candidates gathered and starts the call) -> ICE + DTLS connected on the caller side.

Baseline, measured in the same run: two bare aiortc peers in this process, signalled by a
function call (no HTTP, no call session): what WebRTC itself costs on this machine.
Without ``--server`` the app runs in-process with the settings from ``HOTLINE_CONFIG`` or
defaults (the demo flow); ``--number`` picks the hotline (default: the first listed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable

from app.media.audio import Pcm
from app.media.webrtc import WebRtcCallMedia
from app.settings import Settings, load_settings
from app.sim.caller import CallerPeer, place_call

CALLER_AUDIO = Pcm(bytes(16_000 * 2 // 2), 16_000)  # 0.5 s of silence, then hang up


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def bare_pair_setup_s(settings: Settings) -> float:
    caller = CallerPeer(CALLER_AUDIO)
    media: WebRtcCallMedia | None = None
    try:
        started = time.perf_counter()
        media, answer = await WebRtcCallMedia.accept_offer(settings, await caller.create_offer())
        await caller.accept_answer(answer)
        await asyncio.wait_for(caller.connected.wait(), 15)
        return time.perf_counter() - started
    finally:
        await caller.close()
        if media is not None:
            await media.close()


async def app_call_setup_s(url: str, number: str, answers: list[float]) -> float:
    result = await place_call(url, CALLER_AUDIO, hotline_number=number, grace_s=0.2,
                              timeout_s=10)
    answers.append(result.answer_s)
    return result.setup_s


async def measure(make: Callable[[], Awaitable[float]], calls: int, concurrency: int
                  ) -> list[float]:
    times: list[float] = []
    for start in range(0, calls, concurrency):
        batch = min(concurrency, calls - start)
        times += await asyncio.gather(*(make() for _ in range(batch)))
    return times


def report(label: str, times: list[float]) -> None:
    ms = [1000 * t for t in times]
    print(f"{label:<44} n={len(ms):>3}  p50 {percentile(ms, 50):7.1f} ms  "
          f"p95 {percentile(ms, 95):7.1f} ms  mean {statistics.fmean(ms):7.1f} ms")


async def main(args: argparse.Namespace) -> None:
    from app.log import configure_logging
    from app.sim.cli import first_hotline, serve_in_process

    configure_logging("WARNING", json_logs=False)
    # every call comes from this one address: lift the per-IP set-up limit for the bench
    settings = load_settings(webrtc_offer_rate="100000/minute")
    print(f"WebRTC call set-up, {args.calls} calls, concurrency {args.concurrency}")
    baseline = await measure(lambda: bare_pair_setup_s(settings), args.calls, args.concurrency)
    async with contextlib.AsyncExitStack() as stack:
        if args.server:
            url = args.server
        else:
            url = (await stack.enter_async_context(serve_in_process(settings))).url
        number = args.number or await first_hotline(url)
        await app_call_setup_s(url, number, [])  # warm-up (first TTS prompt, imports)
        answers: list[float] = []
        measured = await measure(lambda: app_call_setup_s(url, number, answers), args.calls,
                                 args.concurrency)
    report("baseline: bare aiortc pair, no HTTP", baseline)
    report("hotline: offer -> answer (HTTP round trip)", answers)
    report("hotline: offer -> connected (call set-up)", measured)
    print(f"overhead p50: {1000 * (percentile(measured, 50) - percentile(baseline, 50)):.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls to time (bounded: <= 200)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--server", help="a running server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--number", help="hotline number; default the first listed")
    parsed = parser.parse_args()
    parsed.calls = max(1, min(parsed.calls, 200))
    parsed.concurrency = max(1, min(parsed.concurrency, parsed.calls))
    asyncio.run(main(parsed))
