"""SDP (RFC 4566) for SIP audio: strict ``parse``, byte-exact ``serialize``, offer/answer.

A description keeps every line in order (session part, then one list per m= section), so a
canonical description serializes back byte for byte; the fields a call needs (connection
address, port, payload types, rtpmap, direction, ptime) are read from those lines.
``negotiate`` answers an offer with G.711 (µ-law or A-law, the offer's order) and
``telephone-event/8000``, or raises ``SdpError`` with the reason for a 488.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

MAX_SDP_BYTES = 16_384
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
STATIC_PT = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000), 18: ("G729", 8000),
             3: ("GSM", 8000), 4: ("G723", 8000)}
CODECS = {"PCMU": 0, "PCMA": 8}  # what Hotline speaks, name -> static payload type
_LINE = re.compile(r"^([a-z])=(.*)$")
_SESSION_ORDER = "vosiuepcbtrzkam"


class SdpError(ValueError):
    """Malformed or unacceptable SDP; the message is the reason."""


@dataclass
class Media:
    kind: str
    port: int
    proto: str
    formats: list[str]
    lines: list[tuple[str, str]] = field(default_factory=list)  # after the m= line

    def attributes(self, name: str) -> list[str]:
        prefix = name + ":"
        return [v[len(prefix):] for k, v in self.lines if k == "a" and v.startswith(prefix)]

    def has_flag(self, name: str) -> bool:
        return any(k == "a" and v == name for k, v in self.lines)

    @property
    def direction(self) -> str:
        for key, value in self.lines:
            if key == "a" and value in DIRECTIONS:
                return value
        return ""

    @property
    def connection(self) -> str | None:
        for key, value in self.lines:
            if key == "c":
                return parse_connection(value)
        return None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """payload type -> (encoding name upper-cased, clock rate), static types included."""
        mapping: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in STATIC_PT:
                mapping[int(fmt)] = STATIC_PT[int(fmt)]
        for value in self.attributes("rtpmap"):
            pt, _, rest = value.partition(" ")
            name, _, rate = rest.partition("/")
            rate = rate.split("/")[0]
            if not pt.isdigit() or not rate.isdigit() or not name:
                raise SdpError(f"bad a=rtpmap:{value[:60]}")
            mapping[int(pt)] = (name.upper(), int(rate))
        return mapping

    @property
    def ptime_ms(self) -> int | None:
        values = self.attributes("ptime")
        return int(values[0]) if values and values[0].strip().isdigit() else None


@dataclass
class SessionDescription:
    lines: list[tuple[str, str]] = field(default_factory=list)  # session part, v= first
    media: list[Media] = field(default_factory=list)

    @property
    def connection(self) -> str | None:
        for key, value in self.lines:
            if key == "c":
                return parse_connection(value)
        return None

    @property
    def origin(self) -> list[str]:
        for key, value in self.lines:
            if key == "o":
                return value.split(" ")
        return []

    @property
    def direction(self) -> str:
        for key, value in self.lines:
            if key == "a" and value in DIRECTIONS:
                return value
        return ""

    def audio(self) -> Media | None:
        for media in self.media:
            if media.kind == "audio" and media.port != 0:
                return media
        return None

    def serialize(self) -> bytes:
        out = [f"{k}={v}" for k, v in self.lines]
        for media in self.media:
            out.append(f"m={media.kind} {media.port} {media.proto} {' '.join(media.formats)}")
            out += [f"{k}={v}" for k, v in media.lines]
        return ("\r\n".join(out) + "\r\n").encode("utf-8")


def parse_connection(value: str) -> str:
    parts = value.split(" ")
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line {value[:60]!r}: expected 'IN IP4 <address>'")
    address = parts[2].split("/")[0]
    try:
        ipaddress.ip_address(address)
    except ValueError as exc:
        raise SdpError(f"bad c= address {address[:40]!r}: not an IP address") from exc
    return address


def parse(data: bytes | str) -> SessionDescription:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    if len(raw) > MAX_SDP_BYTES:
        raise SdpError(f"SDP too large: {len(raw)} bytes (limit {MAX_SDP_BYTES})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError(f"SDP is not UTF-8 (byte {exc.start})") from exc
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with 'v=0'")
    description = SessionDescription()
    current: Media | None = None
    for number, line in enumerate(lines, start=1):
        match = _LINE.match(line)
        if not match:
            raise SdpError(f"SDP line {number} is not 'x=value': {line[:60]!r}")
        key, value = match.groups()
        if key == "m":
            current = _media_line(value, number)
            description.media.append(current)
        elif current is not None:
            current.lines.append((key, value))
        else:
            description.lines.append((key, value))
    _check(description)
    return description


def _media_line(value: str, number: int) -> Media:
    parts = value.split(" ")
    if len(parts) < 4:
        raise SdpError(f"SDP line {number}: m= needs '<media> <port> <proto> <fmt> ...'")
    kind, port_text, proto, *formats = parts
    port_text = port_text.split("/")[0]
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SdpError(f"SDP line {number}: bad port {port_text[:10]!r}")
    if any(not f for f in formats):
        raise SdpError(f"SDP line {number}: empty format in the m= line")
    return Media(kind, int(port_text), proto, formats)


def _check(description: SessionDescription) -> None:
    keys = [k for k, _ in description.lines]
    if "o" not in keys:
        raise SdpError("SDP has no o= line")
    if len(description.origin) != 6:
        raise SdpError("bad o= line: expected 6 fields")
    if "s" not in keys:
        raise SdpError("SDP has no s= line")
    if "t" not in keys:
        raise SdpError("SDP has no t= line")
    session_c = description.connection
    for media in description.media:
        if media.kind == "audio" and media.port and session_c is None and media.connection is None:
            raise SdpError("no connection address (c=) for the audio stream")
        if media.kind == "audio" and media.proto.upper() == "RTP/AVP":
            for fmt in media.formats:
                if not fmt.isdigit() or int(fmt) > 127:
                    raise SdpError(f"bad RTP payload type {fmt[:10]!r} in the audio m= line")
            media.rtpmap()


# ------------------------------------------------------------------ offer / answer

@dataclass(frozen=True)
class Negotiated:
    codec: str  # "PCMU" or "PCMA"
    payload_type: int
    dtmf_payload_type: int | None
    remote_host: str
    remote_port: int
    direction: str  # the REMOTE side's direction as offered (sendrecv, sendonly, ...)
    ptime_ms: int

    @property
    def codec_name(self) -> str:
        return f"{self.codec.lower()}/8000"


def negotiate(offer: SessionDescription, codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> Negotiated:
    """Pick what we use from an offer (or an answer to our offer); ``SdpError`` says why not."""
    audio = offer.audio()
    if audio is None:
        kinds = ", ".join(m.kind for m in offer.media) or "none"
        raise SdpError(f"no active audio stream in the SDP (media: {kinds})")
    if audio.proto.upper() != "RTP/AVP":
        raise SdpError(f"audio transport {audio.proto} is not supported; Hotline takes RTP/AVP")
    mapping = audio.rtpmap()
    chosen: tuple[str, int] | None = None
    for fmt in audio.formats:
        name, rate = mapping.get(int(fmt), ("", 0))
        if name in codecs and rate == 8000:
            chosen = (name, int(fmt))
            break
    if chosen is None:
        offered = ", ".join(f"{n}/{r}" for n, r in (mapping.get(int(f), (f, 0)) for f in
                                                    audio.formats)) or "none"
        raise SdpError(f"no acceptable audio codec offered ({offered}); Hotline speaks "
                       f"{' and '.join(codecs)}")
    dtmf = None
    for fmt in audio.formats:
        name, rate = mapping.get(int(fmt), ("", 0))
        if name == "TELEPHONE-EVENT" and rate == 8000:
            dtmf = int(fmt)
            break
    host = audio.connection or offer.connection or ""
    direction = audio.direction or offer.direction or "sendrecv"
    if host in ("0.0.0.0", "::"):
        direction = "inactive" if direction == "sendrecv" else direction  # RFC 2543 hold
    return Negotiated(chosen[0], chosen[1], dtmf, host, audio.port, direction,
                      audio.ptime_ms or 20)


ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
                    "inactive": "inactive"}


def build(*, session_id: int, version: int, host: str, port: int, codecs: list[tuple[str, int]],
          dtmf_payload_type: int | None, direction: str = "sendrecv",
          ptime_ms: int = 20) -> SessionDescription:
    """Our offer or answer: one audio stream with ``codecs`` [(name, pt)] and DTMF."""
    addr = "IP6" if ":" in host else "IP4"
    lines = [("v", "0"), ("o", f"hotline {session_id} {version} IN {addr} {host}"),
             ("s", "Hotline"), ("c", f"IN {addr} {host}"), ("t", "0 0")]
    formats = [str(pt) for _, pt in codecs]
    media_lines = [("a", f"rtpmap:{pt} {name}/8000") for name, pt in codecs]
    if dtmf_payload_type is not None:
        formats.append(str(dtmf_payload_type))
        media_lines += [("a", f"rtpmap:{dtmf_payload_type} telephone-event/8000"),
                        ("a", f"fmtp:{dtmf_payload_type} 0-16")]
    media_lines += [("a", f"ptime:{ptime_ms}"), ("a", direction)]
    return SessionDescription(lines, [Media("audio", port, "RTP/AVP", formats, media_lines)])
