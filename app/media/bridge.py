"""Bridge two ``CallMedia`` legs (any transports): caller and agent hear each other.

``bridge(a, b)`` pumps each leg's inbound audio into the other's ``play`` (resampled when the
legs run at different rates) until either leg ends, and returns which one ended and why. Keys
pressed on one side are sent to the other when ``forward_dtmf`` and the other leg can send
them (``send_dtmf``). ``on_audio(side, chunk)`` sees every chunk of both sides, for recording
("a" = what leg a said, "b" = what leg b said). The legs are not closed: the caller decides.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from app.call.media import CallMedia
from app.events import AudioChunk, Dtmf
from app.log import get_logger
from app.media.audio import StreamResampler

Side = Literal["a", "b"]


@dataclass(frozen=True)
class BridgeResult:
    ended_by: Side
    reason: str | None  # the ending leg's end_reason
    chunks: dict[str, int]  # audio chunks carried each way: {"a": n, "b": n}


async def _pump(src: CallMedia, dst: CallMedia, side: Side, forward_dtmf: bool,
                on_audio: Callable[[Side, AudioChunk], None] | None,
                counts: dict[str, int]) -> None:
    resampler: StreamResampler | None = None
    async for item in src.inbound():
        if isinstance(item, Dtmf):
            send = getattr(dst, "send_dtmf", None)
            if forward_dtmf and send is not None:
                with contextlib.suppress(RuntimeError):
                    await send(item.digit)
            continue
        if on_audio is not None:
            on_audio(side, item)
        chunk = item
        if item.sample_rate_hz != dst.sample_rate_hz:
            if resampler is None or resampler.from_hz != item.sample_rate_hz:
                resampler = StreamResampler(item.sample_rate_hz, dst.sample_rate_hz)
            chunk = AudioChunk(resampler.process(item.pcm), dst.sample_rate_hz,
                               item.media_ts_ms)
        counts[side] += 1
        await dst.play(chunk)


async def bridge(a: CallMedia, b: CallMedia, *, forward_dtmf: bool = False,
                 on_audio: Callable[[Side, AudioChunk], None] | None = None) -> BridgeResult:
    counts = {"a": 0, "b": 0}
    log = get_logger(component="bridge")
    tasks = {
        asyncio.create_task(_pump(a, b, "a", forward_dtmf, on_audio, counts), name="bridge-a"):
            "a",
        asyncio.create_task(_pump(b, a, "b", forward_dtmf, on_audio, counts), name="bridge-b"):
            "b",
    }
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = next(iter(done))
    side: Side = "a" if tasks[first] == "a" else "b"
    leg = a if side == "a" else b
    if not first.cancelled() and first.exception() is not None:
        log.error("bridge_pump_failed", side=side, error=repr(first.exception()))
    log.info("bridge_ended", ended_by=side, reason=leg.end_reason, chunks=counts)
    return BridgeResult(side, leg.end_reason, counts)
