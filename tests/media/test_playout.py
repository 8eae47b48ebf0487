"""The shared paced playout: framing, backpressure, flush (barge-in), gaps, late frames."""

from __future__ import annotations

import asyncio

import pytest

from app.media.playout import GAP_WINDOW_S, Pacer, PlayoutBuffer


def test_enqueue_splits_into_frames_and_pads_the_last() -> None:
    buf = PlayoutBuffer(8000)  # 20 ms at 8 kHz = 160 samples = 320 bytes
    buf.enqueue(b"\x01\x00" * 200)
    assert buf.queued_ms == 40
    first, second = buf.pop(0.0), buf.pop(0.02)
    assert len(first) == len(second) == 320
    assert second[80:] == bytes(240)  # 40 samples of audio, then zero padding
    assert buf.pop(0.04) == bytes(320)  # empty: silence
    assert (buf.stats.frames_sent, buf.stats.audio_frames_sent) == (3, 2)


def test_flush_drops_everything_and_is_not_a_gap() -> None:
    buf = PlayoutBuffer(16000)
    buf.enqueue(bytes(640 * 10))
    buf.pop(0.0)
    assert buf.flush() == 180
    assert buf.queued_ms == 0 and buf.stats.flushed_ms == 180
    buf.enqueue(bytes(640))
    buf.pop(0.05)
    assert buf.stats.gaps == 0


def test_audio_resuming_soon_after_running_dry_is_a_gap() -> None:
    gaps: list[int] = []
    buf = PlayoutBuffer(16000, on_gap=lambda: gaps.append(1))
    buf.enqueue(bytes(640))
    assert buf.audio_started_at is None
    buf.pop(1.0)
    assert buf.audio_started_at == 1.0
    buf.pop(1.02)  # ran dry: silence starts
    buf.enqueue(bytes(640))
    buf.pop(1.02 + GAP_WINDOW_S / 2)  # the producer was late: a gap
    buf.pop(1.2)
    buf.enqueue(bytes(640))
    buf.pop(1.2 + GAP_WINDOW_S * 2)  # a new prompt after a real pause: not a gap
    assert buf.stats.gaps == 1 and gaps == [1]


async def test_wait_below_holds_the_producer_until_frames_go_out() -> None:
    buf = PlayoutBuffer(16000)
    buf.enqueue(bytes(640 * 20))  # 400 ms
    waiter = asyncio.create_task(buf.wait_below(300))
    await asyncio.sleep(0)
    assert not waiter.done()
    for i in range(5):
        buf.pop(i * 0.02)
    await asyncio.wait_for(waiter, 1)
    assert buf.queued_ms == 300


async def test_close_releases_a_waiting_producer_and_ignores_more_audio() -> None:
    buf = PlayoutBuffer(16000)
    buf.enqueue(bytes(640 * 20))
    waiter = asyncio.create_task(buf.wait_below(0))
    await asyncio.sleep(0)
    buf.close()
    await asyncio.wait_for(waiter, 1)
    buf.enqueue(bytes(640))
    assert buf.queued_ms == 0


def test_bad_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        PlayoutBuffer(0)


async def test_pacer_keeps_real_time_and_counts_a_stall() -> None:
    loop = asyncio.get_running_loop()
    pacer = Pacer(20)
    start = loop.time()
    for _ in range(11):
        await pacer.tick()
    assert loop.time() - start >= 0.2 - 0.005  # 10 frame periods after the first tick
    assert pacer.late_frames == 0
    await asyncio.sleep(0.1)  # the sender stalled for 5 frames
    await pacer.tick()
    assert pacer.late_frames == 1
