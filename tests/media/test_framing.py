"""Inbound framing: any rate and piece size in, 16 kHz 20 ms chunks out, the tone intact."""

from __future__ import annotations

import numpy as np
import pytest

from app.media.framing import InboundFramer, PcmFramer, pcm_frame, to_mono_s16
from tests.helpers.tones import dominant_hz, tone


def test_8khz_pcm_in_odd_pieces_becomes_16khz_20ms_chunks() -> None:
    framer = PcmFramer(16_000)
    pcm = tone(440, 1.0, rate_hz=8_000)
    chunks = []
    for offset in range(0, len(pcm), 322):  # 161 samples: no piece lines up with a frame
        chunks += framer.push(pcm[offset:offset + 322], 8_000)
    assert {len(c.pcm) for c in chunks} == {640}
    assert {c.sample_rate_hz for c in chunks} == {16_000}
    assert [c.media_ts_ms for c in chunks] == [20 * i for i in range(len(chunks))]
    assert 45 <= len(chunks) <= 50  # 1 s, less what the resampler still holds (~60 ms)
    assert framer.media_ts_ms == 20 * len(chunks)
    assert abs(dominant_hz(b"".join(c.pcm for c in chunks[5:])) - 440) < 10


def test_a_rate_change_mid_stream_keeps_the_clock() -> None:
    framer = PcmFramer(16_000)
    first = framer.push(tone(300, 0.2), 16_000)
    second = framer.push(tone(300, 0.2, rate_hz=48_000), 48_000)
    stamps = [c.media_ts_ms for c in first + second]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


@pytest.mark.parametrize(("pcm", "rate", "error"), [
    (b"\x00\x00\x00", 8_000, "s16 PCM must have an even number of bytes, got 3"),
    (b"\x00\x00", 0, "input sample rate must be positive, got 0"),
])
def test_bad_pcm_is_refused_with_a_reason(pcm: bytes, rate: int, error: str) -> None:
    with pytest.raises(ValueError) as info:
        PcmFramer().push(pcm, rate)
    assert str(info.value) == error


def test_av_frames_stereo_and_float_are_mixed_to_mono() -> None:
    import av

    left = np.frombuffer(tone(500, 0.02, rate_hz=48_000), dtype="<i2")
    stereo = np.stack([left, left]).T.reshape(1, -1)  # packed s16: L R L R ...
    frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    frame.sample_rate = 48_000
    assert to_mono_s16(frame) == left.tobytes()
    planar = av.AudioFrame.from_ndarray(
        np.stack([left, left]).astype(np.float32) / 32767.0, format="fltp", layout="stereo")
    planar.sample_rate = 48_000
    mono = np.frombuffer(to_mono_s16(planar), dtype="<i2")
    assert np.max(np.abs(mono.astype(int) - left.astype(int))) <= 1
    chunks = InboundFramer(16_000).push(frame)
    assert len(chunks) <= 1 and all(len(c.pcm) == 640 for c in chunks)


def test_pcm_frame_round_trips() -> None:
    pcm = tone(700, 0.02)
    frame = pcm_frame(pcm, 16_000, pts=320)
    assert (frame.sample_rate, frame.pts, frame.samples) == (16_000, 320, 320)
    assert to_mono_s16(frame) == pcm
