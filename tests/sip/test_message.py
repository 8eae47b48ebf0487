"""SIP message parser: fields, byte-exact round trip, exact errors."""

from __future__ import annotations

import pytest

from app.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    parse,
    parse_name_addr,
    parse_uri,
    parse_via,
)

INVITE = (
    b"INVITE sip:4008001234@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Caller\" <sip:+8613800000000@127.0.0.1>;tag=abc\r\n"
    b"To: <sip:4008001234@127.0.0.1>\r\n"
    b"Call-ID: call-1@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:caller@127.0.0.1:5070>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_invite_fields_and_byte_exact_round_trip() -> None:
    msg = parse(INVITE)
    assert isinstance(msg, SipRequest)
    assert (msg.method, msg.uri, msg.version) == ("INVITE", "sip:4008001234@127.0.0.1:5060",
                                                  "SIP/2.0")
    assert msg.call_id == "call-1@127.0.0.1"
    assert msg.cseq == (1, "INVITE")
    assert msg.get("content-type") == "application/sdp"
    assert msg.body == b"v=0\n"
    via = parse_via(msg.get_all("via")[0])
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "127.0.0.1", 5070,
                                                               "z9hG4bK-1")
    assert via.params["rport"] is None
    sender = parse_name_addr(msg.get("from") or "")
    assert (sender.display, sender.uri, sender.tag) == ("Caller",
                                                        "sip:+8613800000000@127.0.0.1", "abc")
    assert parse_uri(msg.uri).user == "4008001234"
    assert msg.serialize() == INVITE


def test_response_round_trip_and_compact_headers() -> None:
    data = (b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/TCP h;branch=z9hG4bKx\r\nf: <sip:a@h>;tag=1\r\n"
            b"t: <sip:b@h>;tag=2\r\ni: x1\r\nCSeq: 7 INVITE\r\nl: 0\r\n\r\n")
    msg = parse(data)
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason) == (180, "Ringing")
    assert msg.call_id == "x1" and parse_name_addr(msg.get("to") or "").tag == "2"
    assert msg.serialize() == data


def test_comma_separated_values_and_folding() -> None:
    data = (b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b\r\n"
            b"From: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
            b"Supported: timer,\r\n 100rel\r\nContent-Length: 0\r\n\r\n")
    msg = parse(data)
    assert len(msg.get_all("via")) == 2
    assert msg.get_all("supported") == ["timer", "100rel"]


def test_udp_extra_bytes_after_the_body_are_ignored() -> None:
    msg = parse(INVITE + b"garbage")
    assert msg.body == b"v=0\n"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"INVITE sip:x SIP/2.0\r\n", "no blank line after the headers (CRLF CRLF missing)"),
        (b" sip:x SIP/2.0\r\n\r\n", "bad method '' in the request line"),
        (b"INVITE x SIP/2.0\r\n\r\n", "bad Request-URI 'x': expected sip:, sips: or tel:"),
        (b"INVITE sip:x SIP/3.0\r\n\r\n", "unsupported SIP version 'SIP/3.0'"),
        (b"SIP/2.0 99 Odd\r\n\r\n", "bad status code '99' in the status line"),
        (INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"),
         "bad CSeq header 'x INVITE': expected '<number> <METHOD>'"),
        (INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE"),
         "CSeq method 'BYE' does not match the request method 'INVITE'"),
        (INVITE.replace(b"Call-ID: call-1@127.0.0.1\r\n", b""), "missing Call-ID header"),
        (INVITE.replace(b"Content-Length: 4", b"Content-Length: 40"),
         "Content-Length is 40 but only 4 body bytes arrived"),
        (INVITE.replace(b"Content-Length: 4", b"Content-Length: -1"), "bad Content-Length '-1'"),
        (INVITE.replace(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0"),
         "bad Via header 'SIP/2.0 127.0.0.1:5070;branch=z9hG4bK-1;rport': "
         "expected 'SIP/2.0/UDP host;...'"),
        (INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 999"), "bad Max-Forwards '999'"),
        (INVITE.replace(b"To: <sip:", b"To: <sip:x"). replace(b"127.0.0.1>\r\nCall", b"q\r\nCall"),
         "bad address '<sip:x4008001234@q': '<' without '>'"),
        (INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards 70"),
         "header line 3 is not 'Name: value': 'Max-Forwards 70'"),
        (INVITE.replace(b"127.0.0.1:5070;branch", b"127.0.0.1:99999;branch"),
         "bad port '99999' in Via 'SIP/2.0/UDP 127.0.0.1:99999;branch=z9hG4bK-1;rport'"),
        (b"INVITE sip:x SIP/2.0\r\nFrom: \xff\r\n\r\n", "headers are not UTF-8 (byte 28)"),
    ],
)
def test_malformed_messages_raise_a_precise_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse(data)
    assert str(info.value) == reason


def test_stream_transport_needs_an_exact_content_length() -> None:
    with pytest.raises(SipParseError, match="Content-Length is 4 but the body has 11 bytes"):
        parse(INVITE + b"garbage", stream=True)


def test_oversized_message_is_refused() -> None:
    with pytest.raises(SipParseError, match=r"message too large: 70000 bytes \(limit 65535\)"):
        parse(b"x" * 70_000)
