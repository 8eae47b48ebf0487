"""RTP and RTCP (RFC 3550) packets: strict ``parse``, byte-exact ``serialize``.

``RtpPacket.parse`` checks version, padding, CSRC count and header extension against the
datagram length and raises ``ValueError`` with the reason. RTCP: sender and receiver reports
(with report blocks), SDES (CNAME), BYE; a compound datagram parses to a list of packets.
``ReceptionStats`` keeps RFC 3550 appendix A.3/A.8 loss and interarrival jitter for one source.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
RTP_HEADER = struct.Struct("!BBHII")
RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE, RTCP_APP = 200, 201, 202, 203, 204


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    padding: int = 0  # padding bytes at the end (0: none)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < RTP_HEADER.size:
            raise ValueError(f"RTP packet too short: {len(data)} bytes (header is 12)")
        first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise ValueError(f"RTP version is {first >> 6}, expected 2")
        has_padding, has_extension, cc = bool(first & 0x20), bool(first & 0x10), first & 0x0F
        pos = RTP_HEADER.size
        if len(data) < pos + 4 * cc:
            raise ValueError(f"RTP packet too short for {cc} CSRCs")
        csrcs = list(struct.unpack_from(f"!{cc}I", data, pos))
        pos += 4 * cc
        profile, extension = None, b""
        if has_extension:
            if len(data) < pos + 4:
                raise ValueError("RTP packet too short for its header extension")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if len(data) < pos + 4 * words:
                raise ValueError(f"RTP header extension of {words} words overruns the packet")
            extension = data[pos:pos + 4 * words]
            pos += 4 * words
        end, padding = len(data), 0
        if has_padding:
            padding = data[-1]
            if padding == 0 or pos + padding > len(data):
                raise ValueError(f"bad RTP padding length {padding}")
            end -= padding
        return cls(second & 0x7F, sequence, timestamp, ssrc, bytes(data[pos:end]),
                   bool(second & 0x80), csrcs, profile, extension, padding)

    def serialize(self) -> bytes:
        first = RTP_VERSION << 6 | (0x20 if self.padding else 0) | len(self.csrcs)
        if self.extension_profile is not None:
            first |= 0x10
        out = RTP_HEADER.pack(first, (0x80 if self.marker else 0) | self.payload_type,
                              self.sequence, self.timestamp, self.ssrc)
        out += struct.pack(f"!{len(self.csrcs)}I", *self.csrcs)
        if self.extension_profile is not None:
            out += struct.pack("!HH", self.extension_profile, len(self.extension) // 4)
            out += self.extension
        out += self.payload
        if self.padding:
            out += bytes(self.padding - 1) + bytes([self.padding])
        return out


def rtp_header(payload_type: int, sequence: int, timestamp: int, ssrc: int,
               marker: bool = False) -> bytes:
    """The 12-byte header alone (hot path: no object)."""
    return RTP_HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                           timestamp & 0xFFFFFFFF, ssrc)


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192-223 in the second byte."""
    return len(data) >= 2 and 192 <= data[1] <= 223


# ------------------------------------------------------------------ RTCP

@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255, /256
    packets_lost: int  # cumulative, signed 24-bit
    highest_sequence: int  # extended
    jitter: int  # in timestamp units
    lsr: int = 0
    dlsr: int = 0

    def serialize(self) -> bytes:
        lost = self.packets_lost & 0xFFFFFF
        return struct.pack("!IIIIII", self.ssrc, (self.fraction_lost << 24) | lost,
                           self.highest_sequence, self.jitter, self.lsr, self.dlsr)

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, pos)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceDescription:
    chunks: tuple[tuple[int, str], ...]  # (ssrc, cname)


@dataclass(frozen=True, slots=True)
class Bye:
    sources: tuple[int, ...]
    reason: str = ""


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye


def _rtcp_header(count: int, packet_type: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise ValueError("RTCP body must be a multiple of 4 bytes")
    return struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body


def serialize_rtcp(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        body = struct.pack("!IQIII", packet.ssrc, packet.ntp_timestamp, packet.rtp_timestamp,
                           packet.packet_count, packet.octet_count)
        body += b"".join(r.serialize() for r in packet.reports)
        return _rtcp_header(len(packet.reports), RTCP_SR, body)
    if isinstance(packet, ReceiverReport):
        body = struct.pack("!I", packet.ssrc) + b"".join(r.serialize() for r in packet.reports)
        return _rtcp_header(len(packet.reports), RTCP_RR, body)
    if isinstance(packet, SourceDescription):
        body = b""
        for ssrc, cname in packet.chunks:
            text = cname.encode("utf-8")
            chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\x00"
            body += chunk + bytes(-len(chunk) % 4)
        return _rtcp_header(len(packet.chunks), RTCP_SDES, body)
    reason = packet.reason.encode("utf-8")
    body = struct.pack(f"!{len(packet.sources)}I", *packet.sources)
    if reason:
        body += bytes([len(reason)]) + reason
        body += bytes(-len(body) % 4)
    return _rtcp_header(len(packet.sources), RTCP_BYE, body)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """A compound RTCP datagram -> its packets (unknown types skipped); ValueError if bad."""
    if len(data) < 4:
        raise ValueError(f"RTCP packet too short: {len(data)} bytes")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError(f"truncated RTCP header at byte {pos}")
        first, packet_type, words = struct.unpack_from("!BBH", data, pos)
        if first >> 6 != RTP_VERSION:
            raise ValueError(f"RTCP version is {first >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise ValueError(f"RTCP packet length {4 * words + 4} overruns the datagram")
        count = first & 0x1F
        body = data[pos + 4:end]
        packet = _parse_one(packet_type, count, body)
        if packet is not None:
            packets.append(packet)
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket | None:
    if packet_type == RTCP_SR:
        if len(body) < 24 + 24 * count:
            raise ValueError(f"RTCP SR too short for {count} report blocks")
        ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
        blocks = tuple(ReportBlock.parse(body, 24 + 24 * i) for i in range(count))
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, blocks)
    if packet_type == RTCP_RR:
        if len(body) < 4 + 24 * count:
            raise ValueError(f"RTCP RR too short for {count} report blocks")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, tuple(ReportBlock.parse(body, 4 + 24 * i)
                                          for i in range(count)))
    if packet_type == RTCP_SDES:
        return SourceDescription(tuple(_sdes_chunks(body, count)))
    if packet_type == RTCP_BYE:
        if len(body) < 4 * count:
            raise ValueError(f"RTCP BYE too short for {count} sources")
        sources = struct.unpack_from(f"!{count}I", body)
        reason = ""
        if len(body) > 4 * count:
            size = body[4 * count]
            reason = body[4 * count + 1:4 * count + 1 + size].decode("utf-8", "replace")
        return Bye(tuple(sources), reason)
    return None


def _sdes_chunks(body: bytes, count: int) -> list[tuple[int, str]]:
    chunks: list[tuple[int, str]] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(body):
            raise ValueError("RTCP SDES chunk overruns the packet")
        (ssrc,) = struct.unpack_from("!I", body, pos)
        pos += 4
        cname = ""
        while pos < len(body) and body[pos] != 0:
            if pos + 2 > len(body):
                raise ValueError("RTCP SDES item overruns the packet")
            kind, size = body[pos], body[pos + 1]
            if pos + 2 + size > len(body):
                raise ValueError("RTCP SDES item overruns the packet")
            if kind == 1:
                cname = body[pos + 2:pos + 2 + size].decode("utf-8", "replace")
            pos += 2 + size
        pos += 4 - pos % 4  # the null item(s) up to the next 32-bit boundary
        chunks.append((ssrc, cname))
    return chunks


# ------------------------------------------------------------------ reception statistics

class ReceptionStats:
    """RFC 3550 A.1/A.3/A.8 for one source: extended sequence, loss, interarrival jitter."""

    def __init__(self, clock_rate_hz: int) -> None:
        self.clock_rate_hz = clock_rate_hz
        self.base_seq: int | None = None
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.jitter = 0.0  # timestamp units
        self._transit: float | None = None
        self._expected_prior = 0
        self._received_prior = 0

    def update(self, sequence: int, timestamp: int, arrival_s: float,
               timing: bool = True) -> None:
        """One packet arrived; ``timing=False`` for packets whose timestamp is not the
        sampling instant (RFC 4733 events keep their start timestamp): sequence only."""
        if self.base_seq is None:
            self.base_seq, self.max_seq = sequence, sequence
        else:
            delta = (sequence - self.max_seq) & 0xFFFF
            if 0 < delta < 3000:
                if sequence < self.max_seq:
                    self.cycles += 1 << 16
                self.max_seq = sequence
        self.received += 1
        if not timing:
            return
        transit = arrival_s * self.clock_rate_hz - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16
        self._transit = transit

    def reset(self) -> None:
        self.__init__(self.clock_rate_hz)  # type: ignore[misc]

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return 0 if self.base_seq is None else self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    @property
    def jitter_ms(self) -> float:
        return 1000.0 * self.jitter / self.clock_rate_hz

    def report_block(self, ssrc: int, lsr: int = 0, dlsr: int = 0) -> ReportBlock:
        expected_interval = self.expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (
            (lost_interval << 8) // expected_interval)
        return ReportBlock(ssrc, min(fraction, 255), min(self.lost, 0x7FFFFF),
                           self.extended_max & 0xFFFFFFFF, int(self.jitter), lsr, dlsr)
