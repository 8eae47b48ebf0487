"""RTP/RTCP packets: fields, byte-exact round trip, exact errors; reception statistics."""

from __future__ import annotations

import pytest

from app.media.rtp import (
    Bye,
    ReceiverReport,
    ReceptionStats,
    ReportBlock,
    RtpPacket,
    SenderReport,
    SourceDescription,
    is_rtcp,
    parse_rtcp,
    rtp_header,
    serialize_rtcp,
)

# version 2, marker, PT 0, seq 4660, ts 305419896, ssrc 0xdeadbeef, payload 4 bytes
PLAIN = bytes.fromhex("80801234123456 78deadbeef".replace(" ", "")) + b"\xff\xfe\xfd\xfc"


def test_plain_packet_fields_and_round_trip() -> None:
    packet = RtpPacket.parse(PLAIN)
    assert (packet.payload_type, packet.marker, packet.sequence) == (0, True, 0x1234)
    assert (packet.timestamp, packet.ssrc, packet.payload) == (0x12345678, 0xDEADBEEF,
                                                               b"\xff\xfe\xfd\xfc")
    assert packet.serialize() == PLAIN
    assert rtp_header(0, 0x1234, 0x12345678, 0xDEADBEEF, marker=True) == PLAIN[:12]


def test_csrc_extension_and_padding_round_trip() -> None:
    data = (bytes.fromhex("b108000100000002 00000003") + bytes.fromhex("00000004")
            + bytes.fromhex("bede0001") + b"\x10\xaa\x00\x00" + b"pay" + b"\x00\x00\x03")
    packet = RtpPacket.parse(data)
    assert packet.csrcs == [4] and packet.extension_profile == 0xBEDE
    assert packet.extension == b"\x10\xaa\x00\x00" and packet.payload == b"pay"
    assert packet.padding == 3 and packet.payload_type == 8
    assert packet.serialize() == data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00", "RTP packet too short: 2 bytes (header is 12)"),
        (b"\x40" + bytes(11), "RTP version is 1, expected 2"),
        (b"\x82" + bytes(11) + bytes(4), "RTP packet too short for 2 CSRCs"),
        (b"\x90" + bytes(11) + b"\xbe\xde\x00\x05", "RTP header extension of 5 words overruns "
         "the packet"),
        (b"\xa0" + bytes(11) + b"ab\x09", "bad RTP padding length 9"),
    ],
)
def test_bad_rtp_raises_a_precise_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == reason


def test_rtcp_compound_round_trip() -> None:
    block = ReportBlock(ssrc=7, fraction_lost=25, packets_lost=-3, highest_sequence=70000,
                        jitter=40, lsr=1, dlsr=2)
    packets = [
        SenderReport(1, 0x0102030405060708, 160, 10, 1600, (block,)),
        SourceDescription(((1, "hotline@127.0.0.1"),)),
        ReceiverReport(2, ()),
        Bye((1,), "bye"),
    ]
    data = b"".join(serialize_rtcp(p) for p in packets)
    assert is_rtcp(data) and not is_rtcp(PLAIN)
    assert parse_rtcp(data) == packets
    assert b"".join(serialize_rtcp(p) for p in parse_rtcp(data)) == data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\xc8", "RTCP packet too short: 2 bytes"),
        (b"\x40\xc9\x00\x01\x00\x00\x00\x00", "RTCP version is 1, expected 2"),
        (b"\x80\xc9\x00\x09\x00\x00\x00\x00", "RTCP packet length 40 overruns the datagram"),
        (b"\x81\xc9\x00\x01\x00\x00\x00\x00", "RTCP RR too short for 1 report blocks"),
    ],
)
def test_bad_rtcp_raises_a_precise_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_rtcp(data)
    assert str(info.value) == reason


def test_reception_stats_count_loss_wraparound_and_jitter() -> None:
    stats = ReceptionStats(8000)
    seqs = [65530 + i for i in range(12) if i not in (3, 7)]  # 2 lost, across the wrap
    for n, seq in enumerate(seqs):
        stats.update(seq & 0xFFFF, 160 * (seq - 65530), 0.02 * (seq - 65530) + 0.005 * (n % 2))
    assert stats.expected == 12 and stats.received == 10 and stats.lost == 2
    assert stats.extended_max == 65536 + 5
    assert 10 < stats.jitter < 40  # 5 ms alternating delay = 40 units, smoothed by 1/16
    block = stats.report_block(99)
    assert block.packets_lost == 2 and block.fraction_lost == (2 << 8) // 12
