"""Adaptive jitter buffer: reorder, conceal, shrink, resync."""

from __future__ import annotations

import numpy as np

from app.media.jitter import FRAME_BYTES, JitterBuffer


def frame(n: int) -> bytes:
    return np.full(160, 100 + n, dtype="<i2").tobytes()


def level(pcm: bytes) -> int:
    return int(np.frombuffer(pcm, "<i2")[0])


def test_reordered_packets_come_out_in_order() -> None:
    jb = JitterBuffer(min_delay_ms=60)
    order = [0, 2, 1, 3, 5, 4, 6, 7]
    out = []
    for i in order:  # one packet arrives per 20 ms tick, out of order
        jb.push(160 * i, frame(i))
        out.append(jb.pop())
    out += [jb.pop() for _ in range(3)]
    played = [level(p) - 100 for p in out if p and level(p)]  # after the initial delay
    assert played[:8] == list(range(8))
    assert jb.stats.concealed == 1  # the pop after the last packet


def test_a_lost_packet_is_concealed_then_silence() -> None:
    jb = JitterBuffer(min_delay_ms=20)
    jb.push(0, frame(0))
    assert level(jb.pop() or b"") == 100
    concealed = [jb.pop() for _ in range(5)]
    assert [level(p or b"") for p in concealed] == [50, 25, 12, 0, 0]
    assert jb.stats.concealed == 5


def test_ten_ms_packets_are_joined_into_frames() -> None:
    jb = JitterBuffer(min_delay_ms=20)
    half = np.full(80, 7, dtype="<i2").tobytes()
    jb.push(0, half)
    jb.push(80, half)
    out = jb.pop() or b""
    assert len(out) == FRAME_BYTES and set(np.frombuffer(out, "<i2")) == {7}


def test_late_packets_are_counted_and_too_much_delay_is_dropped() -> None:
    jb = JitterBuffer(min_delay_ms=20, max_delay_ms=100)
    for i in range(20):
        jb.push(160 * i, frame(i))
    first = jb.pop() or b""
    assert level(first) - 100 >= 16  # shrunk to about the target delay
    assert jb.stats.dropped > 0
    jb.push(0, frame(0))
    assert jb.stats.late == 1


def test_a_timestamp_jump_resyncs() -> None:
    jb = JitterBuffer(min_delay_ms=20)
    jb.push(0, frame(1))
    jb.pop()
    jb.push(160 * 100_000, frame(2))
    assert level(jb.pop() or b"") == 102 and jb.stats.resyncs == 1
