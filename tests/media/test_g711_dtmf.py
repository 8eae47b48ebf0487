"""G.711 tables, RFC 4733 events (one digit per event), SIP INFO bodies."""

from __future__ import annotations

import numpy as np
import pytest

from app.media.dtmf import DtmfEvent, DtmfReceiver, dtmf_packets, parse_info_body
from app.media.g711 import G711
from tests.helpers.tones import dominant_hz, tone


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_round_trip_keeps_a_tone(codec: str) -> None:
    g711 = G711(codec)
    pcm = tone(1000, 0.2, 8000)
    code = g711.encode(pcm)
    assert len(code) == len(pcm) // 2
    back = g711.decode(code)
    assert abs(dominant_hz(back, 8000) - 1000) < 10
    error = np.abs(np.frombuffer(back, "<i2").astype(int) - np.frombuffer(pcm, "<i2"))
    assert error.max() < 1100  # companding step at full scale
    assert g711.decode(g711.silence_code * 4) == bytes(8) or codec == "PCMA"


def test_g711_rejects_an_unknown_codec() -> None:
    with pytest.raises(ValueError, match="unknown G.711 codec 'G729': expected PCMU or PCMA"):
        G711("G729")


def test_event_payload_round_trip_and_errors() -> None:
    data = bytes([5, 0x80 | 10, 0x03, 0x20])
    event = DtmfEvent.parse(data)
    assert (event.digit, event.end, event.volume, event.duration) == ("5", True, 10, 800)
    assert event.serialize() == data
    with pytest.raises(ValueError, match=r"telephone-event payload too short: 2 bytes \(need 4\)"):
        DtmfEvent.parse(b"\x05\x80")


def test_one_digit_per_event_despite_redundant_and_repeated_packets() -> None:
    receiver = DtmfReceiver()
    got = []
    for ts, key in ((1000, "1"), (3000, "#"), (5000, "1")):
        for _marker, payload in dtmf_packets(key) * 2:  # every packet twice (retransmission)
            digit = receiver.push(ts, payload)
            if digit:
                got.append(digit)
    assert got == ["1", "#", "1"]
    assert receiver.events == 3 and receiver.packets == 60


def test_an_event_whose_start_was_lost_still_counts_once() -> None:
    receiver = DtmfReceiver()
    ends = [p for _m, p in dtmf_packets("9") if DtmfEvent.parse(p).end]
    assert [receiver.push(42, p) for p in ends] == ["9", None, None]


def test_a_replayed_event_counts_again_only_after_a_pause() -> None:
    receiver = DtmfReceiver(rearm_s=1.0)
    packets = [p for _m, p in dtmf_packets("1")]
    first = [receiver.push(7, p, now_s=0.02 * i) for i, p in enumerate(packets)]
    again = [receiver.push(7, p, now_s=5 + 0.02 * i) for i, p in enumerate(packets)]
    assert first.count("1") == 1 and again.count("1") == 1


def test_sender_packets_have_marker_first_and_three_ends() -> None:
    packets = dtmf_packets("*", duration_ms=100)
    assert packets[0][0] is True and not any(m for m, _ in packets[1:])
    events = [DtmfEvent.parse(p) for _m, p in packets]
    assert [e.end for e in events][-3:] == [True, True, True]
    assert events[-1].duration == 800 and {e.digit for e in events} == {"*"}


@pytest.mark.parametrize(
    ("ctype", "body", "expected"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", ("5", 160)),
        ("application/dtmf-relay", b"Signal=11\r\n", ("#", 0)),
        ("application/dtmf", b"*", ("*", 0)),
    ],
)
def test_info_bodies(ctype: str, body: bytes, expected: tuple[str, int]) -> None:
    assert parse_info_body(ctype, body) == expected


@pytest.mark.parametrize(
    ("ctype", "body", "reason"),
    [
        ("application/dtmf-relay", b"Duration=160", "dtmf-relay body has no Signal= line"),
        ("application/dtmf-relay", b"Signal=X1", "INFO DTMF signal 'X1' is not a key"),
        ("text/plain", b"5", "INFO body type 'text/plain' is not DTMF"),
    ],
)
def test_bad_info_bodies(ctype: str, body: bytes, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_info_body(ctype, body)
    assert str(info.value) == reason
