"""SDP offer checks: a real Chromium offer passes; each malformed line is named with a reason.

Every bad case is the real offer (``tests/helpers/sdp.py``) with one change.
"""

from __future__ import annotations

import pytest

from app.media.sdp_check import OfferError, OfferSummary, check_offer
from app.media.webrtc import WebRtcCallMedia
from app.settings import Settings
from tests.helpers.sdp import CHROMIUM_OFFER, LINES, cut_after, replaced, without


def test_a_real_chromium_offer_passes() -> None:
    assert check_offer(CHROMIUM_OFFER) == OfferSummary(
        audio_codecs=("opus/48000", "red/48000", "G722/8000", "PCMU/8000", "PCMA/8000",
                      "CN/8000", "telephone-event/48000", "telephone-event/8000"),
        usable_codecs=("opus/48000", "PCMU/8000"), has_data_channel=True)


@pytest.mark.allow_leaks  # aiortc's connect task outlives a connection closed unconnected
async def test_aiortc_answers_the_real_chromium_offer(settings: Settings) -> None:
    media, answer = await WebRtcCallMedia.accept_offer(settings, CHROMIUM_OFFER)
    try:
        assert media.codec == "opus/48000"
        assert "a=mid:0" in answer and "a=mid:1" in answer
    finally:
        await media.close()


BAD = "malformed SDP offer: "
RTPMAP = "PT NAME/RATE[/CHANNELS], e.g. '111 opus/48000/2'"
ICE_PWD = "22 to 256 ICE characters (A-Z a-z 0-9 + /)"
FINGERPRINT = "HASH-FUNCTION HEX:HEX:..., e.g. 'sha-256 4B:3D:...'"
CASES: list[tuple[str, str, int, str]] = [
    ("not SDP", "hello", 400, BAD + "it must start with 'v=0'"),
    ("empty", "", 400, BAD + "it must start with 'v=0'"),
    ("not x=value", replaced("s=", "this is not sdp"), 400, BAD + "line 3 is not 'x=value'"),
    ("a NUL byte", replaced("s=", "s=\x00"), 400, BAD + "line 3 is not 'x=value'"),
    ("a lone surrogate", replaced("s=", "s=\ud800"), 400,
     BAD + "not valid Unicode text at character 51 (a lone surrogate)"),
    ("empty a=rtpmap", replaced("a=rtpmap:111", "a=rtpmap:"), 400,
     BAD + f"line 28 'a=rtpmap:': a=rtpmap needs a value: {RTPMAP}"),
    ("a=rtpmap without a codec", replaced("a=rtpmap:111", "a=rtpmap:111"), 400,
     BAD + f"line 28 'a=rtpmap:111': a=rtpmap must be {RTPMAP}"),
    ("empty a=mid", replaced("a=mid:0", "a=mid:"), 400,
     BAD + "line 18 'a=mid:': a=mid needs a value: an identification tag, e.g. '0'"),
    ("a=msid: and a space", replaced("a=msid:", "a=msid: "), 400,
     BAD + "line 24 'a=msid: ': a=msid needs a value: STREAM-ID [TRACK-ID]"),
    ("cut off after a=ice-pwd", cut_after("a=ice-pwd", "a=ice-pwd"), 400,
     BAD + f"line 14 'a=ice-pwd': a=ice-pwd needs a value: {ICE_PWD}"),
    ("cut off inside a=ice-pwd", cut_after("a=ice-pwd", "a=ice-pwd:AYFum"), 400,
     BAD + f"line 14 'a=ice-pwd:AYFum': a=ice-pwd must be {ICE_PWD}"),
    ("cut off after a=fingerprint", cut_after("a=fingerprint", "a=fingerprint"), 400,
     BAD + f"line 16 'a=fingerprint': a=fingerprint needs a value: {FINGERPRINT}"),
    ("cut off inside a=fingerprint", cut_after("a=fingerprint", "a=fingerprint:sha-256 C2:4"),
     400, BAD + f"line 16 'a=fingerprint:sha-256 C2:4': a=fingerprint must be {FINGERPRINT}"),
    ("cut off after the a=ice-pwd line", cut_after("a=ice-options", ""), 400,
     "the SDP offer has no DTLS fingerprint (a=fingerprint); WebRTC media must be encrypted"),
    ("no a=setup", without("a=setup"), 400,
     "the SDP offer has no DTLS role (a=setup: actpass, active or passive)"),
    ("a=setup:holdconn", replaced("a=setup", "a=setup:holdconn"), 400,
     BAD + "line 17 'a=setup:holdconn': a=setup must be actpass, active or passive"),
    ("no ICE credentials", without("a=ice-"), 400,
     "the SDP offer has no ICE credentials (a=ice-ufrag / a=ice-pwd)"),
    ("a candidate with a bad address", replaced(
        "a=candidate:", "a=candidate:1 1 udp 2113937151 999.1.1.1 5000 typ host"), 400,
     BAD + "line 11 'a=candidate:1 1 udp 2113937151 999.1.1.1 5000 typ host': candidate "
           "address '999.1.1.1' is not an IP address"),
    ("a truncated candidate", replaced("a=candidate:", "a=candidate:1 1 udp"), 400,
     BAD + "line 11 'a=candidate:1 1 udp': a=candidate must be FOUNDATION COMPONENT PROTOCOL "
           "PRIORITY ADDRESS PORT typ TYPE [NAME VALUE]..."),
    ("a=fmtp for an unmapped payload type", replaced("a=fmtp:111", "a=fmtp:99 minptime=10"),
     400, BAD + "line 30 'a=fmtp:99 minptime=10': payload type 99 has no a=rtpmap before it"),
    ("a=ssrc without a colon", replaced("a=ssrc:", "a=ssrc:1 foo"), 400,
     BAD + "line 39 'a=ssrc:1 foo': a=ssrc must be SSRC ATTRIBUTE:VALUE, e.g. '1234 cname:x'"),
    ("a=extmap with extra words", replaced("a=extmap:1", "a=extmap:1 urn:x extra"), 400,
     BAD + "line 19 'a=extmap:1 urn:x extra': a=extmap must be ID[/DIRECTION] URI"),
    ("a port out of range", replaced("m=audio", "m=audio 99999 UDP/TLS/RTP/SAVPF 111 0"), 400,
     BAD + "line 8 'm=audio 99999 UDP/TLS/RTP/SAVPF 111 0': port out of range"),
    ("a payload type that is no number", replaced("m=audio", "m=audio 9 UDP/TLS/RTP/SAVPF x"),
     400, BAD + "line 8 'm=audio 9 UDP/TLS/RTP/SAVPF x': payload type 'x' is not a number "
                "0-127"),
    ("a bad c= line", replaced("c=", "c=IN IP4"), 400,
     BAD + "line 9 'c=IN IP4': expected 'c=IN IP4|IP6 ADDRESS'"),
    ("two m-lines share a mid", replaced("a=mid:1", "a=mid:0"), 400,
     BAD + "two m-lines share one a=mid"),
    ("BUNDLE names an unknown mid", replaced("a=group:", "a=group:BUNDLE 0 7"), 400,
     BAD + "a=group:BUNDLE names unknown a=mid 7"),
    ("no a=sctp-port", without("a=sctp-port"), 400,
     "the SDP offer's data channel m-line has no a=sctp-port"),
    ("no media", "\r\n".join(LINES[:7]) + "\r\n", 415,
     "the SDP offer has no media (m=) line; Hotline needs audio"),
    ("video", replaced("m=application", "m=video 9 UDP/TLS/RTP/SAVPF 96"), 415,
     "the offer has video media; Hotline takes audio only"),
    ("receive-only audio", replaced("a=sendrecv", "a=recvonly"), 415,
     "the offer's audio is 'recvonly'; the caller must send"),
]


@pytest.mark.parametrize(("sdp", "status", "reason"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_bad_offer_is_refused_with_its_line_and_reason(sdp: str, status: int,
                                                         reason: str) -> None:
    with pytest.raises(OfferError) as info:
        check_offer(sdp)
    assert (info.value.status_code, info.value.detail) == (status, reason)


def test_a_long_bad_line_is_quoted_short() -> None:
    with pytest.raises(OfferError) as info:
        check_offer(replaced("a=mid:0", "a=mid:" + "x" * 5000 + " y"))
    assert len(info.value.detail) < 200
    assert "'a=mid:" + "x" * 54 + "...'" in info.value.detail
