"""SDP parser and offer/answer: fields, byte-exact round trip, exact errors, 488 reasons."""

from __future__ import annotations

import pytest

from app.sip import sdp

OFFER = (
    b"v=0\r\n"
    b"o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 6000 RTP/AVP 8 0 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)


def test_offer_fields_round_trip_and_negotiation() -> None:
    offer = sdp.parse(OFFER)
    audio = offer.audio()
    assert audio is not None
    assert (audio.port, audio.proto, audio.formats) == (6000, "RTP/AVP", ["8", "0", "101"])
    assert audio.rtpmap() == {8: ("PCMA", 8000), 0: ("PCMU", 8000),
                              101: ("TELEPHONE-EVENT", 8000)}
    assert offer.connection == "127.0.0.1" and audio.direction == "sendrecv"
    assert offer.serialize() == OFFER
    chosen = sdp.negotiate(offer)
    assert (chosen.codec, chosen.payload_type, chosen.dtmf_payload_type) == ("PCMA", 8, 101)
    assert (chosen.remote_host, chosen.remote_port, chosen.ptime_ms) == ("127.0.0.1", 6000, 20)


def test_static_payload_types_need_no_rtpmap_and_hold_is_seen() -> None:
    offer = sdp.parse(b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                      b"m=audio 7000 RTP/AVP 0\r\n")
    chosen = sdp.negotiate(offer)
    assert (chosen.codec, chosen.dtmf_payload_type, chosen.direction) == ("PCMU", None,
                                                                          "inactive")
    held = sdp.parse(OFFER.replace(b"a=sendrecv", b"a=sendonly"))
    assert sdp.negotiate(held).direction == "sendonly"


def test_our_answer_serializes_as_built() -> None:
    answer = sdp.build(session_id=5, version=1, host="127.0.0.1", port=20000,
                       codecs=[("PCMU", 0)], dtmf_payload_type=101, direction="recvonly")
    text = answer.serialize().decode()
    assert text == ("v=0\r\no=hotline 5 1 IN IP4 127.0.0.1\r\ns=Hotline\r\n"
                    "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 101\r\n"
                    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
                    "a=fmtp:101 0-16\r\na=ptime:20\r\na=recvonly\r\n")
    assert sdp.parse(text).serialize().decode() == text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "SDP must start with 'v=0'"),
        (b"v=0\r\nhello\r\n", "SDP line 2 is not 'x=value': 'hello'"),
        (OFFER.replace(b"o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n", b""),
         "SDP has no o= line"),
        (OFFER.replace(b"m=audio 6000 RTP/AVP 8 0 101", b"m=audio 6000"),
         "SDP line 6: m= needs '<media> <port> <proto> <fmt> ...'"),
        (OFFER.replace(b"6000", b"70000"), "SDP line 6: bad port '70000'"),
        (OFFER.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 nowhere"),
         "bad c= address 'nowhere': not an IP address"),
        (OFFER.replace(b"c=IN IP4 127.0.0.1\r\n", b""),
         "no connection address (c=) for the audio stream"),
        (OFFER.replace(b"RTP/AVP 8 0 101", b"RTP/AVP 8 0 abc"),
         "bad RTP payload type 'abc' in the audio m= line"),
        (OFFER.replace(b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:0 PCMU"), "bad a=rtpmap:0 PCMU"),
    ],
)
def test_malformed_sdp_raises_a_precise_reason(data: bytes, reason: str) -> None:
    with pytest.raises(sdp.SdpError) as info:
        sdp.parse(data)
    assert str(info.value) == reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (OFFER.replace(b"RTP/AVP 8 0 101", b"RTP/AVP 9 101").replace(
            b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n", b""),
         "no acceptable audio codec offered (G722/8000, TELEPHONE-EVENT/8000); "
         "Hotline speaks PCMU and PCMA"),
        (OFFER.replace(b"m=audio", b"m=video"), "no active audio stream in the SDP (media: video)"),
        (OFFER.replace(b"RTP/AVP", b"RTP/SAVP"),
         "audio transport RTP/SAVP is not supported; Hotline takes RTP/AVP"),
    ],
)
def test_unacceptable_offers_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(sdp.SdpError) as info:
        sdp.negotiate(sdp.parse(data))
    assert str(info.value) == reason
