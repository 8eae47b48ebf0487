"""RFC 4733 telephone-events: the payload format, a receiver and a sender.

``DtmfEvent.parse`` / ``serialize`` handle the 4-byte event payload. ``DtmfReceiver`` turns a
stream of event packets into one digit per event however many packets carry it (start,
updates, the three redundant end packets, retransmissions): an event is known by its RTP
timestamp. ``dtmf_packets`` makes the packets a sender puts on the wire for one key press.
SIP INFO bodies (``application/dtmf-relay`` and ``application/dtmf``) parse here too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENT_DIGITS = "0123456789*#ABCD"  # events 0-15
DIGIT_EVENTS = {d: i for i, d in enumerate(EVENT_DIGITS)}


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    event: int
    end: bool
    volume: int  # 0..63, -dBm0
    duration: int  # timestamp units

    @property
    def digit(self) -> str | None:
        return EVENT_DIGITS[self.event] if self.event < len(EVENT_DIGITS) else None

    @classmethod
    def parse(cls, payload: bytes) -> DtmfEvent:
        if len(payload) < 4:
            raise ValueError(f"telephone-event payload too short: {len(payload)} bytes (need 4)")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} out of range 0-63")
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | self.volume,
                           self.duration)


class DtmfReceiver:
    """One digit per event. ``push`` returns the digit the first time an event is seen."""

    def __init__(self, remembered: int = 16, rearm_s: float = 1.0) -> None:
        self._seen: dict[int, float] = {}  # RTP timestamp of recent events -> last packet at
        self._remembered = remembered
        self._rearm_s = rearm_s
        self.events = 0
        self.packets = 0
        self.ignored = 0  # events outside 0-15 (flash, tones)

    def push(self, timestamp: int, payload: bytes, now_s: float = 0.0) -> str | None:
        """``now_s``: arrival time; an event timestamp silent for ``rearm_s`` is a new press
        (a sender that replays the same packets, as sipp's pcaps do)."""
        event = DtmfEvent.parse(payload)
        self.packets += 1
        last = self._seen.get(timestamp)
        self._seen[timestamp] = now_s
        if last is not None and now_s - last < self._rearm_s:
            return None
        while len(self._seen) > self._remembered:
            del self._seen[next(iter(self._seen))]
        digit = event.digit
        if digit is None:
            self.ignored += 1
            return None
        self.events += 1
        return digit

    def reset(self) -> None:
        self._seen.clear()


def dtmf_packets(digit: str, *, duration_ms: int = 160, volume: int = 10, step_ms: int = 20,
                 clock_rate_hz: int = 8000) -> list[tuple[bool, bytes]]:
    """``[(marker, payload), ...]`` for one key: start (marker), updates, 3 end packets."""
    if digit.upper() not in DIGIT_EVENTS:
        raise ValueError(f"not a DTMF key: {digit!r}")
    event = DIGIT_EVENTS[digit.upper()]
    step = clock_rate_hz * step_ms // 1000
    total = clock_rate_hz * duration_ms // 1000
    packets = []
    for i, elapsed in enumerate(range(step, total, step)):
        packets.append((i == 0, DtmfEvent(event, False, volume, elapsed).serialize()))
    end = DtmfEvent(event, True, volume, total).serialize()
    packets += [(not packets, end), (False, end), (False, end)]
    return packets


def parse_info_body(content_type: str, body: bytes) -> tuple[str, int]:
    """SIP INFO DTMF: ``Signal=5\\r\\nDuration=160`` (dtmf-relay) or ``5`` (dtmf)."""
    kind = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8", "replace").strip()
    if kind == "application/dtmf":
        signal, duration = text, 0
    elif kind == "application/dtmf-relay":
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip().lower()] = value.strip()
        if "signal" not in fields:
            raise ValueError("dtmf-relay body has no Signal= line")
        signal = fields["signal"]
        duration_text = fields.get("duration", "0")
        duration = int(duration_text) if duration_text.isdigit() else 0
    else:
        raise ValueError(f"INFO body type {kind!r} is not DTMF")
    if signal == "10":
        signal = "*"
    elif signal == "11":
        signal = "#"
    if len(signal) != 1 or signal.upper() not in DIGIT_EVENTS:
        raise ValueError(f"INFO DTMF signal {signal[:10]!r} is not a key")
    return signal.upper(), duration
