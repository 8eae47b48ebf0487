"""G.711 µ-law (PCMU) and A-law (PCMA) as table look-ups.

The tables come from FFmpeg's own ``pcm_mulaw``/``pcm_alaw`` codecs (through PyAV) once per
process: every one of the 65,536 s16 values encoded, every one of the 256 code bytes decoded.
A 20 ms frame is then one numpy gather each way (a few µs), which keeps the RTP hot path cheap.
"""

from __future__ import annotations

from functools import cache

import av
import numpy as np
import numpy.typing as npt

CODEC_NAMES = {"PCMU": "pcm_mulaw", "PCMA": "pcm_alaw"}


@cache
def _encode_table(codec: str) -> npt.NDArray[np.uint8]:
    ctx = av.CodecContext.create(CODEC_NAMES[codec], "w")
    ctx.sample_rate, ctx.layout, ctx.format = 8000, "mono", "s16"  # type: ignore[attr-defined]
    every = np.arange(-32768, 32768, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(every, format="s16", layout="mono")
    frame.sample_rate = 8000
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))  # type: ignore[attr-defined]
    table = np.frombuffer(b"".join(bytes(p) for p in packets), dtype=np.uint8)
    if table.size != 65536:
        raise RuntimeError(f"{codec}: FFmpeg encoded {table.size} codes for 65536 samples")
    return table


@cache
def _decode_table(codec: str) -> npt.NDArray[np.int16]:
    ctx = av.CodecContext.create(CODEC_NAMES[codec], "r")
    ctx.sample_rate, ctx.layout = 8000, "mono"  # type: ignore[attr-defined]
    frames = ctx.decode(av.Packet(bytes(range(256))))  # type: ignore[attr-defined]
    table = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype("<i2")
    if table.size != 256:
        raise RuntimeError(f"{codec}: FFmpeg decoded {table.size} samples for 256 codes")
    return table


class G711:
    """Encoder/decoder for one codec (``"PCMU"`` or ``"PCMA"``), s16le mono at 8 kHz."""

    def __init__(self, codec: str) -> None:
        if codec not in CODEC_NAMES:
            raise ValueError(f"unknown G.711 codec {codec!r}: expected PCMU or PCMA")
        self.codec = codec
        table = _encode_table(codec)
        # indexed by the sample's bits read as unsigned: s16 value v sits at (v + 32768) ^ 0x8000
        self._enc = np.ascontiguousarray(table[np.arange(65536, dtype=np.uint32) ^ 0x8000])
        self._dec = _decode_table(codec)
        self.silence_code = bytes([int(table[32768])])

    def encode(self, pcm: bytes) -> bytes:
        return bytes(self._enc[np.frombuffer(pcm, dtype="<u2")].tobytes())

    def decode(self, payload: bytes) -> bytes:
        return self._dec[np.frombuffer(payload, dtype=np.uint8)].tobytes()
