"""Mixing s16 PCM: sums clip instead of wrapping, a bounded source loses its oldest audio,
and the two-way mix follows whichever side is running."""

from __future__ import annotations

import numpy as np

from app.media.mix import SampleFifo, TwoWayMix, mix

FRAME = 640  # 20 ms of 16 kHz s16le


def pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def values(buf: bytes) -> list[int]:
    return [int(v) for v in np.frombuffer(buf, dtype="<i2")]


def test_mix_adds_and_clips_at_both_ends() -> None:
    assert values(mix(pcm(1000, -1000, 30000, -30000), pcm(24, 5, 30000, -30000))) == [
        1024, -995, 32767, -32768]
    assert values(mix(pcm(1, 2, 3), pcm(10))) == [11, 2, 3]  # the shorter one padded
    assert mix(pcm(7)) == pcm(7) and mix() == b""


def test_fifo_is_bounded_and_mixes_what_it_has() -> None:
    fifo = SampleFifo(16_000, max_ms=20)  # 640 bytes
    fifo.push(pcm(*range(200)))
    fifo.push(pcm(*range(200, 400)))
    assert len(fifo) == FRAME and fifo.dropped_bytes == 160  # the oldest 80 samples
    assert values(fifo.take(4)) == [80, 81]
    assert values(fifo.mix_into(pcm(1000, 1000))) == [1082, 1083]
    fifo.clear()
    assert fifo.mix_into(pcm(5)) == pcm(5)


def test_two_way_mix_waits_for_both_sides_then_follows_the_one_running() -> None:
    two = TwoWayMix(16_000, lag_frames=2)
    assert two.push(0, pcm(*[100] * 320)) == []  # the other side's frame may come
    [frame] = two.push(1, pcm(*[-30] * 320))
    assert values(frame) == [70] * 320
    out = []
    for _ in range(3):  # side 1 went quiet: side 0 alone once it is 2 frames ahead
        out += two.push(0, pcm(*[9] * 320))
    assert [values(f) for f in out] == [[9] * 320]
