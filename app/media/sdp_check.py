"""SDP offer checks: is this an offer Hotline can answer, and if not, exactly why.

``check_offer(text)`` runs before any connection exists. It checks each line that aiortc's
parser reads against its grammar (so no malformed attribute reaches aiortc, whose parser and
``setRemoteDescription`` fail on them with ``IndexError``/``AttributeError`` or crash a task
later), then the offer's structure (one audio m-line the caller sends on, ICE credentials,
a DTLS fingerprint and role, unique ``a=mid``s, a BUNDLE naming them), then the codecs.
Any problem raises ``OfferError`` with the HTTP status to answer and a reason naming the line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from aiortc import sdp as aiortc_sdp

WANTED_CODECS = frozenset({"opus/48000", "pcmu/8000"})
MAX_QUOTED_CHARS = 60  # how much of a bad line a reason quotes

_LINE = re.compile(r"^[a-z]=.*$")
_M_LINE = re.compile(r"^m=([^ ]+) ([0-9]+) ([A-Z/]+) (.+)$")  # what aiortc accepts
_C_LINE = re.compile(r"^c=IN IP[46] [^ ]+$")
_TOKEN = r"[!-~]+"  # visible ASCII, no spaces
_PT = r"\d{1,3}"
_ICE_CHARS = r"[A-Za-z0-9+/]"

# attribute -> (grammar of its value, how to write it). Only what aiortc's parser reads.
_ATTRIBUTES: dict[str, tuple[re.Pattern[str], str]] = {
    name: (re.compile(pattern), form)
    for name, pattern, form in [
        ("rtpmap", rf"^{_PT} [^/\s]+/\d{{1,6}}(/\d{{1,2}})?$",
         "PT NAME/RATE[/CHANNELS], e.g. '111 opus/48000/2'"),
        ("fmtp", rf"^{_PT} \S.*$", "PT PARAMETERS, e.g. '111 minptime=10'"),
        ("rtcp-fb", rf"^({_PT}|\*) \S+( \S.*)?$", "PT TYPE [PARAMETER], e.g. '111 nack'"),
        ("mid", rf"^{_TOKEN}$", "an identification tag, e.g. '0'"),
        ("msid", rf"^{_TOKEN}( {_TOKEN})?$", "STREAM-ID [TRACK-ID]"),
        ("fingerprint", r"^[A-Za-z0-9-]+ [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$",
         "HASH-FUNCTION HEX:HEX:..., e.g. 'sha-256 4B:3D:...'"),
        ("ice-ufrag", rf"^{_ICE_CHARS}{{4,256}}$", "4 to 256 ICE characters (A-Z a-z 0-9 + /)"),
        ("ice-pwd", rf"^{_ICE_CHARS}{{22,256}}$", "22 to 256 ICE characters (A-Z a-z 0-9 + /)"),
        ("ice-options", rf"^{_TOKEN}( {_TOKEN})*$", "space-separated option tags"),
        ("setup", r"^(actpass|active|passive)$", "actpass, active or passive"),
        ("candidate",
         rf"^{_TOKEN} \d{{1,3}} (?i:udp|tcp) \d{{1,10}} {_TOKEN} \d{{1,5}} typ "
         rf"(host|srflx|prflx|relay)( {_TOKEN} {_TOKEN})*$",
         "FOUNDATION COMPONENT PROTOCOL PRIORITY ADDRESS PORT typ TYPE [NAME VALUE]..."),
        ("extmap", rf"^\d{{1,3}}(/(sendrecv|sendonly|recvonly|inactive))? {_TOKEN}$",
         "ID[/DIRECTION] URI"),
        ("max-message-size", r"^\d{1,10}$", "a number of bytes"),
        ("rtcp", r"^\d{1,5}( IN IP[46] [^ ]+)?$", "PORT [IN IP4|IP6 ADDRESS]"),
        ("sctp-port", r"^\d{1,5}$", "a port number"),
        ("sctpmap", r"^\d{1,5} \S.*$", "PORT PROTOCOL [STREAMS]"),
        ("ssrc", r"^\d{1,10} [^:\s]+:.*$", "SSRC ATTRIBUTE:VALUE, e.g. '1234 cname:x'"),
        ("ssrc-group", r"^[!-~]+( \d{1,10})*$", "SEMANTICS SSRC..."),
        ("group", rf"^{_TOKEN}( {_TOKEN})*$", "SEMANTICS TAG..., e.g. 'BUNDLE 0 1'"),
        ("msid-semantic", rf"^ ?{_TOKEN}( {_TOKEN})*$", "SEMANTICS [ID...], e.g. 'WMS *'"),
    ]
}


class OfferError(ValueError):
    """An SDP offer we cannot answer; ``status_code`` is the HTTP status to reply with."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class OfferSummary:
    audio_codecs: tuple[str, ...]  # what the offer's audio m-line lists, e.g. "opus/48000"
    usable_codecs: tuple[str, ...]  # the subset we can use
    has_data_channel: bool


def check_offer(sdp_text: str) -> OfferSummary:
    """Validate an SDP offer before any connection exists; raise ``OfferError`` with a reason."""
    description = _parse_sdp(sdp_text)
    audio = [m for m in description.media if m.kind == "audio"]
    others = sorted({m.kind for m in description.media} - {"audio", "application"})
    if others:
        raise OfferError(415, f"the offer has {', '.join(others)} media; Hotline takes audio only")
    if not audio:
        raise OfferError(415, "the SDP offer has no audio m-line")
    if len(audio) > 1:
        raise OfferError(415, "the SDP offer has more than one audio m-line")
    if sum(m.kind == "application" for m in description.media) > 1:
        raise OfferError(415, "the SDP offer has more than one data channel (application) m-line")
    has_fingerprint = "\na=fingerprint:" in "\n" + sdp_text.replace("\r\n", "\n")
    for media in description.media:
        _check_transport(media, has_fingerprint)
    direction = audio[0].direction or "sendrecv"  # RFC 3264: no attribute means sendrecv
    if direction not in ("sendrecv", "sendonly"):
        raise OfferError(415, f"the offer's audio is '{direction}'; the caller must send")
    _check_mids(description)
    offered = tuple(f"{c.mimeType.split('/')[-1]}/{c.clockRate}" for c in audio[0].rtp.codecs)
    usable = tuple(c for c in offered if c.lower() in WANTED_CODECS)
    if not usable:
        raise OfferError(
            415,
            f"no supported audio codec in the offer ({', '.join(offered) or 'none'}); "
            "Hotline speaks Opus and PCMU",
        )
    has_data = any(m.kind == "application" for m in description.media)
    return OfferSummary(offered, usable, has_data)


def answer_codec(answer_sdp: str) -> str | None:
    """The first audio codec of our own answer (what the call uses), e.g. ``"opus/48000"``."""
    for media in aiortc_sdp.SessionDescription.parse(answer_sdp).media:
        if media.kind == "audio" and media.rtp.codecs:
            codec = media.rtp.codecs[0]
            return f"{codec.mimeType.split('/')[-1].lower()}/{codec.clockRate}"
    return None


def _quote(line: str) -> str:
    shown = line if len(line) <= MAX_QUOTED_CHARS else line[:MAX_QUOTED_CHARS] + "..."
    return repr(shown)


def _bad(number: int, line: str, reason: str) -> OfferError:
    return OfferError(400, f"malformed SDP offer: line {number} {_quote(line)}: {reason}")


def _parse_sdp(sdp_text: str) -> aiortc_sdp.SessionDescription:
    try:
        sdp_text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise OfferError(400, f"malformed SDP offer: not valid Unicode text at character "
                              f"{exc.start} (a lone surrogate)") from exc
    numbered = [(number, line) for number, line
                in enumerate(sdp_text.replace("\r\n", "\n").split("\n"), start=1) if line]
    lines = [line for _, line in numbered]
    if not lines or lines[0] != "v=0":
        raise OfferError(400, "malformed SDP offer: it must start with 'v=0'")
    for number, line in numbered:
        _check_line(number, line)
    if not any(line.startswith("m=") for line in lines):
        raise OfferError(415, "the SDP offer has no media (m=) line; Hotline needs audio")
    _check_payload_references(numbered)
    try:
        return aiortc_sdp.SessionDescription.parse("\r\n".join(lines) + "\r\n")
    except (ValueError, AssertionError, LookupError, StopIteration) as exc:  # a gap above
        raise OfferError(400, f"malformed SDP offer: {exc or type(exc).__name__}") from exc


def _check_line(number: int, line: str) -> None:
    if not _LINE.match(line) or any(ord(c) < 32 and c != "\t" for c in line):
        raise OfferError(400, f"malformed SDP offer: line {number} is not 'x=value'")
    kind = line[0]
    if kind == "m":
        _check_m_line(number, line)
    elif kind == "c" and not _C_LINE.match(line):
        raise _bad(number, line, "expected 'c=IN IP4|IP6 ADDRESS'")
    elif kind == "a":
        _check_attribute(number, line)


def _check_m_line(number: int, line: str) -> None:
    match = _M_LINE.match(line)
    if match is None:
        raise _bad(number, line, "expected 'm=MEDIA PORT PROTO FORMAT...'")
    if int(match.group(2)) > 65535:
        raise _bad(number, line, "port out of range")
    if match.group(1) in ("audio", "video"):
        for fmt in match.group(4).split():
            if not fmt.isdigit() or int(fmt) > 127:
                raise _bad(number, line, f"payload type {fmt!r} is not a number 0-127")


def _check_attribute(number: int, line: str) -> None:
    name, colon, value = line[2:].partition(":")
    rule = _ATTRIBUTES.get(name)
    if rule is None:
        return  # an attribute aiortc ignores
    pattern, form = rule
    if not colon or not value.strip():
        raise _bad(number, line, f"a={name} needs a value: {form}")
    if not pattern.match(value):
        raise _bad(number, line, f"a={name} must be {form}")
    if name == "candidate":
        _check_candidate(number, line, value)


def _check_candidate(number: int, line: str, value: str) -> None:
    bits = value.split()
    address, port = bits[4], int(bits[5])
    if port > 65535:
        raise _bad(number, line, "candidate port out of range")
    if address.endswith(".local"):  # an mDNS name (browsers hide host addresses this way)
        return
    try:
        ipaddress.ip_address(address)
    except ValueError as exc:
        raise _bad(number, line, f"candidate address {address!r} is not an IP address") from exc


def _check_payload_references(numbered: list[tuple[int, str]]) -> None:
    """``a=fmtp`` must name a payload type that its m-section maps (aiortc looks it up)."""
    mapped: set[str] = set()
    for number, line in numbered:
        if line.startswith("m="):
            mapped = set()
        elif line.startswith("a=rtpmap:"):
            mapped.add(line[len("a=rtpmap:"):].split(" ", 1)[0])
        elif line.startswith("a=fmtp:"):
            pt = line[len("a=fmtp:"):].split(" ", 1)[0]
            if pt not in mapped:
                raise _bad(number, line, f"payload type {pt} has no a=rtpmap before it")


def _check_transport(media: aiortc_sdp.MediaDescription, has_fingerprint: bool) -> None:
    """WebRTC needs ICE credentials and a DTLS fingerprint and role (session or media level)."""
    if not (media.ice and media.ice.usernameFragment and media.ice.password):
        raise OfferError(400, "the SDP offer has no ICE credentials (a=ice-ufrag / a=ice-pwd)")
    if not has_fingerprint or (media.dtls is not None and not media.dtls.fingerprints):
        raise OfferError(400, "the SDP offer has no DTLS fingerprint (a=fingerprint); "
                              "WebRTC media must be encrypted")
    if media.dtls is None:  # aiortc drops the DTLS parameters of an offer with no a=setup
        raise OfferError(400, "the SDP offer has no DTLS role (a=setup: actpass, active or "
                              "passive)")
    if media.kind == "application":
        if media.profile == "DTLS/SCTP":
            if not str(media.fmt[0]).isdigit():
                raise OfferError(400, "the SDP offer's data channel m-line has no SCTP port")
        elif media.sctp_port is None:
            raise OfferError(400, "the SDP offer's data channel m-line has no a=sctp-port")


def _check_mids(description: aiortc_sdp.SessionDescription) -> None:
    mids = [m.rtp.muxId for m in description.media]
    if any(not mid for mid in mids):
        raise OfferError(400, "malformed SDP offer: every m-line needs an a=mid (BUNDLE)")
    if len(set(mids)) != len(mids):
        raise OfferError(400, "malformed SDP offer: two m-lines share one a=mid")
    for group in description.group:
        unknown = [str(item) for item in group.items if str(item) not in mids]
        if group.semantic == "BUNDLE" and unknown:
            raise OfferError(400, f"malformed SDP offer: a=group:BUNDLE names unknown "
                                  f"a=mid {', '.join(unknown)[:MAX_QUOTED_CHARS]}")
