"""The framed protocol between the server and its worker processes.

One frame = an 8-byte prefix (big-endian header length, payload length), a JSON header (an
object) and a binary payload (PCM, or nothing). Both sides use ``encode`` and ``FrameParser``;
a frame that breaks the rules raises ``ProtocolError`` naming the rule, and the side that sees
it treats the peer as broken (the server replaces the worker).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

PREFIX = struct.Struct(">II")
MAX_HEADER_BYTES = 1 << 20
MAX_PAYLOAD_BYTES = 64 << 20


class ProtocolError(ValueError):
    """A frame that cannot be read: too large, not JSON, or not a JSON object."""


@dataclass(frozen=True, slots=True)
class Frame:
    header: dict[str, Any]
    payload: bytes = b""


def encode(header: dict[str, Any], payload: bytes = b"") -> bytes:
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"frame header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"frame payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return PREFIX.pack(len(raw), len(payload)) + raw + payload


class FrameParser:
    """Incremental: ``feed`` bytes as they arrive, get back every frame they complete."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= PREFIX.size:
            n_header, n_payload = PREFIX.unpack_from(buf, pos)
            if n_header > MAX_HEADER_BYTES or n_payload > MAX_PAYLOAD_BYTES:
                raise ProtocolError(
                    f"frame of {n_header} + {n_payload} bytes exceeds the limits "
                    f"({MAX_HEADER_BYTES} + {MAX_PAYLOAD_BYTES})"
                )
            end = pos + PREFIX.size + n_header + n_payload
            if len(buf) < end:
                break
            start = pos + PREFIX.size
            frames.append(Frame(_header(bytes(buf[start : start + n_header])),
                                bytes(buf[start + n_header : end])))
            pos = end
        if pos:
            del buf[:pos]
        return frames


def _header(raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"frame header is not JSON: {raw[:60]!r}") from exc
    if not isinstance(header, dict):
        raise ProtocolError(f"frame header is not a JSON object: {raw[:60]!r}")
    return header
