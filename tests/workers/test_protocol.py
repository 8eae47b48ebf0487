"""The framed protocol: round trip, frames split anywhere, and precise errors."""

from __future__ import annotations

import struct

import pytest

from app.workers.protocol import MAX_HEADER_BYTES, Frame, FrameParser, ProtocolError, encode


def test_frames_round_trip_whatever_the_read_sizes() -> None:
    frames = [Frame({"op": "a", "s": 1, "q": n, "text": "상담원"}, bytes(range(n))) for n in
              range(0, 200, 37)]
    wire = b"".join(encode(f.header, f.payload) for f in frames)
    for step in (1, 7, 64, len(wire)):
        parser = FrameParser()
        got: list[Frame] = []
        for i in range(0, len(wire), step):
            got += parser.feed(wire[i : i + step])
        assert got == frames and parser.buffered == 0


@pytest.mark.parametrize(("wire", "message"), [
    (struct.pack(">II", MAX_HEADER_BYTES + 1, 0), "exceeds the limits"),
    (struct.pack(">II", 5, 0) + b"nope!", "frame header is not JSON: b'nope!'"),
    (struct.pack(">II", 2, 0) + b"[]", "frame header is not a JSON object: b'[]'"),
])
def test_bad_frames_are_refused_with_the_reason(wire: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FrameParser().feed(wire)


def test_an_oversized_header_is_refused_before_sending() -> None:
    with pytest.raises(ProtocolError, match="frame header of"):
        encode({"text": "x" * MAX_HEADER_BYTES})
