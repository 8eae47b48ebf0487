"""Media CPU per call-second: a G.711 RTP leg (jitter buffer included) vs an aiortc PCMU leg.

    python -m bench.sip_media [--calls 20] [--seconds 10]

Both run N concurrent calls in this one process for the same time, each call being the
server's leg *and* the caller's end talking to it over 127.0.0.1: the caller sends a tone
(20 ms frames), the server leg consumes its inbound audio (as a session does) and sends audio
back. CPU is this process's CPU time (user + system) over the run, divided by calls x seconds.
The aiortc baseline (``WebRtcCallMedia`` + the ``hotline call`` peer, PCMU forced) is measured
in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable

from app.events import AudioChunk
from app.media.audio import Pcm, frames
from app.media.rtp_leg import RtpCallMedia
from tests.helpers.tones import tone

Leg = tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]


async def _drain(leg: object, counter: list[int]) -> None:
    async for item in leg.inbound():  # type: ignore[attr-defined]
        if isinstance(item, AudioChunk):
            counter[0] += 1


async def _feed(leg: object, pcm: bytes, rate_hz: int) -> None:
    """Audio to send, 1 s per ``play`` (the leg's buffer paces it): what the leg costs, not
    the producer's 50 wake-ups a second."""
    while True:
        for chunk in frames(pcm, rate_hz, frame_ms=1000):
            await leg.play(chunk)  # type: ignore[attr-defined]


async def rtp_calls(n: int, seconds: float) -> tuple[float, int]:
    legs: list[RtpCallMedia] = []
    tasks: list[asyncio.Task[None]] = []
    received = [0]
    caller_pcm, bot_pcm = tone(440, 2.0, 8000), tone(880, 2.0, 8000)
    for _ in range(n):
        server = await RtpCallMedia.open("127.0.0.1", 44000, 52000)
        caller = await RtpCallMedia.open("127.0.0.1", 44000, 52000)
        for me, other in ((server, caller), (caller, server)):
            me.configure(codec="PCMU", payload_type=0, dtmf_payload_type=101,
                         remote_host="127.0.0.1", remote_port=other.local_port,
                         remote_direction="sendrecv")
            me.start()
        legs += [server, caller]
        tasks += [asyncio.create_task(_drain(server, received)),
                  asyncio.create_task(_drain(caller, [0])),
                  asyncio.create_task(_feed(caller, caller_pcm, 8000)),
                  asyncio.create_task(_feed(server, bot_pcm, 8000))]
    cpu, frames_in = await _measure(seconds, received)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for leg in legs:
        await leg.close()
    return cpu, frames_in


async def aiortc_calls(n: int, seconds: float) -> tuple[float, int]:
    from app.media.webrtc import WebRtcCallMedia
    from app.settings import Settings
    from app.sim.caller import CallerPeer

    settings = Settings(log_json=False)
    pairs = []
    received = [0]
    tasks: list[asyncio.Task[None]] = []
    for _ in range(n):
        caller = CallerPeer(Pcm(tone(440, seconds + 30, 16_000), 16_000), codecs=["audio/PCMU"])
        media, answer = await WebRtcCallMedia.accept_offer(settings, await caller.create_offer())
        await caller.accept_answer(answer)
        pairs.append((caller, media))
        tasks.append(asyncio.create_task(_drain(media, received)))
        tasks.append(asyncio.create_task(_feed(media, tone(880, 2.0, 16_000), 16_000)))
    await asyncio.gather(*(asyncio.wait_for(c.connected.wait(), 30) for c, _ in pairs))
    cpu, frames_in = await _measure(seconds, received)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for caller, media in pairs:
        await caller.close()
        await media.close()
    return cpu, frames_in


async def _measure(seconds: float, received: list[int]) -> tuple[float, int]:
    """(CPU seconds, server-side inbound frames) over the window."""
    await asyncio.sleep(1.0)  # let every call settle (jitter buffers filled, ICE up)
    start, frames_before = os.times(), received[0]
    await asyncio.sleep(seconds)
    end = os.times()
    return (end.user - start.user) + (end.system - start.system), received[0] - frames_before


async def main_async(calls: int, seconds: float) -> None:
    started = time.monotonic()
    rtp_cpu, rtp_frames = await rtp_calls(calls, seconds)
    with contextlib.suppress(Exception):
        await asyncio.sleep(0.5)
    rtc_cpu, rtc_frames = await aiortc_calls(calls, seconds)
    per = calls * seconds
    print(f"{calls} concurrent calls x {seconds:.0f} s, both ends of each call in this process "
          f"(total {time.monotonic() - started:.0f} s)")
    print(f"{'leg':<28} {'CPU ms per call-second':>24} {'inbound frames/s/call':>22}")
    print(f"{'G.711 RTP + jitter buffer':<28} {1000 * rtp_cpu / per:>24.2f} "
          f"{rtp_frames / per:>22.1f}")
    print(f"{'aiortc PCMU (baseline)':<28} {1000 * rtc_cpu / per:>24.2f} "
          f"{rtc_frames / per:>22.1f}")
    print(f"ratio: aiortc / RTP = {rtc_cpu / max(rtp_cpu, 1e-9):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main_async(args.calls, args.seconds))


if __name__ == "__main__":
    main()
