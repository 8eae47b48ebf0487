"""SIP messages (RFC 3261 §7): strict ``parse`` and byte-exact ``serialize``.

A message keeps its headers as an ordered list of ``(name, value)`` exactly as received (name
as spelled, value stripped), so a canonical message (``Name: value`` lines, CRLF) serializes
back byte for byte. Look-ups are case-insensitive and know the compact forms (``i``, ``f``...).
``parse`` raises ``SipParseError`` (a ``ValueError``) with a precise reason; the UAS answers
it with 400 when it can still find where to send the answer, and drops it otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

MAX_MESSAGE_BYTES = 65_535
MAX_HEADERS = 128
MAX_HEADER_BYTES = 8_192
COMPACT = {
    "i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
    "o": "event", "r": "refer-to", "x": "session-expires", "a": "accept-contact",
}
METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE",
    "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH",
})
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_REQUEST_URI = re.compile(r"^(sips?|tel):[^\s]+$", re.IGNORECASE)


class SipParseError(ValueError):
    """Malformed SIP; the message says what is wrong."""


@lru_cache(maxsize=512)
def canonical(name: str) -> str:
    lower = name.lower()
    return COMPACT.get(lower, lower)


@dataclass
class SipMessage:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    # -- headers
    def get(self, name: str) -> str | None:
        wanted = canonical(name)
        for key, value in self.headers:
            if canonical(key) == wanted:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, comma-separated values split (outside quotes and <>)."""
        wanted = canonical(name)
        values: list[str] = []
        for key, value in self.headers:
            if canonical(key) == wanted:
                values.extend(split_commas(value))
        return values

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header by one (at the first one's place, else appended)."""
        wanted = canonical(name)
        out: list[tuple[str, str]] = []
        placed = False
        for key, old in self.headers:
            if canonical(key) == wanted:
                if not placed:
                    out.append((name, value))
                    placed = True
                continue
            out.append((key, old))
        if not placed:
            out.append((name, value))
        self.headers = out

    def add(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def remove(self, name: str) -> None:
        wanted = canonical(name)
        self.headers = [(k, v) for k, v in self.headers if canonical(k) != wanted]

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.get("cseq") or "")

    def start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        lines = [self.start_line()]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass
class SipRequest(SipMessage):
    method: str = ""
    uri: str = ""
    version: str = "SIP/2.0"

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass
class SipResponse(SipMessage):
    status: int = 0
    reason: str = ""
    version: str = "SIP/2.0"

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


def split_commas(value: str) -> list[str]:
    if "," not in value:  # the common case: one value
        value = value.strip()
        return [value] if value else []
    parts: list[str] = []
    depth_angle = 0
    quoted = False
    current: list[str] = []
    for ch in value:
        if ch == '"' and (not current or current[-1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth_angle += 1
        elif not quoted and ch == ">":
            depth_angle = max(0, depth_angle - 1)
        elif ch == "," and not quoted and depth_angle == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    tail = "".join(current).strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


def parse_cseq(value: str) -> tuple[int, str]:
    number, _, method = value.strip().partition(" ")
    if not number.isdigit() or len(number) > 10 or not method.strip():
        raise SipParseError(f"bad CSeq header {value!r}: expected '<number> <METHOD>'")
    seq = int(number)
    if seq >= 2**31:
        raise SipParseError(f"bad CSeq header {value!r}: number must be below 2**31")
    return seq, method.strip()


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """``(head, rest)`` split at the blank line, or None when the head is incomplete."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    return data[:end], data[end + 4:]


def parse(data: bytes, *, stream: bool = False) -> SipMessage:
    """Parse one whole SIP message. ``stream`` (TCP): the body must be exactly Content-Length."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"message too large: {len(data)} bytes (limit {MAX_MESSAGE_BYTES})")
    data = data.lstrip(b"\r\n")  # keepalive CRLFs before a message are allowed
    parts = split_head(data)
    if parts is None:
        raise SipParseError("no blank line after the headers (CRLF CRLF missing)")
    head_bytes, body = parts
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"headers are not UTF-8 (byte {exc.start})") from exc
    lines = head.split("\r\n")
    message = _start_line(lines[0])
    message.headers = _headers(lines[1:])
    _check_body(message, body, stream)
    _check_required(message)
    return message


def _start_line(line: str) -> SipMessage:
    if "\x00" in line:
        raise SipParseError("NUL byte in the start line")
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version != "SIP/2.0":
            raise SipParseError(f"unsupported SIP version {version!r}")
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code!r} in the status line")
        return SipResponse(status=int(code), reason=reason, version=version)
    pieces = line.split(" ")
    if len(pieces) != 3:
        raise SipParseError(f"bad request line {line[:80]!r}: expected 'METHOD URI SIP/2.0'")
    method, uri, version = pieces
    if not method or not _TOKEN.match(method):
        raise SipParseError(f"bad method {method[:40]!r} in the request line")
    if not _REQUEST_URI.match(uri):
        raise SipParseError(f"bad Request-URI {uri[:80]!r}: expected sip:, sips: or tel:")
    if version != "SIP/2.0":
        raise SipParseError(f"unsupported SIP version {version[:20]!r}")
    return SipRequest(method=method, uri=uri, version=version)


def _headers(lines: list[str]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=2):
        if len(line) > MAX_HEADER_BYTES:
            raise SipParseError(f"header line {number} is longer than {MAX_HEADER_BYTES} bytes")
        if "\x00" in line:
            raise SipParseError(f"NUL byte in header line {number}")
        if line[:1] in (" ", "\t"):  # folded continuation (RFC 3261 §7.3.1)
            if not headers:
                raise SipParseError("header line 2 starts with whitespace (nothing to continue)")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not name or not _TOKEN.match(name):
            raise SipParseError(f"header line {number} is not 'Name: value': {line[:60]!r}")
        headers.append((name, value.strip(" \t")))
        if len(headers) > MAX_HEADERS:
            raise SipParseError(f"more than {MAX_HEADERS} headers")
    return headers


def _check_body(message: SipMessage, body: bytes, stream: bool) -> None:
    raw = message.get("content-length")
    if raw is None:
        if stream:
            raise SipParseError("Content-Length is required over a stream transport")
        message.body = body
        return
    if not raw.isdigit() or len(raw) > 7:
        raise SipParseError(f"bad Content-Length {raw[:20]!r}")
    length = int(raw)
    if length > len(body):
        raise SipParseError(
            f"Content-Length is {length} but only {len(body)} body bytes arrived"
        )
    if stream and length != len(body):
        raise SipParseError(f"Content-Length is {length} but the body has {len(body)} bytes")
    message.body = body[:length]  # UDP: extra bytes after the body are ignored (§18.3)


def _check_required(message: SipMessage) -> None:
    counts: dict[str, int] = {}
    for key, _ in message.headers:
        name = canonical(key)
        counts[name] = counts.get(name, 0) + 1
    for name in ("via", "from", "to", "call-id", "cseq"):
        if not counts.get(name) or (name == "via" and not message.get_all("via")):
            raise SipParseError(f"missing {name.title().replace('Id', 'ID')} header")
        if name != "via" and counts[name] > 1:
            raise SipParseError(f"more than one {name.title().replace('Id', 'ID')} header")
    seq, method = parse_cseq(message.get("cseq") or "")
    if isinstance(message, SipRequest) and method != message.method:
        raise SipParseError(
            f"CSeq method {method!r} does not match the request method {message.method!r}"
        )
    parse_via(message.get_all("via")[0])
    for name in ("from", "to"):
        parse_name_addr(message.get(name) or "")
    if not message.call_id.strip() or " " in message.call_id.strip():
        raise SipParseError(f"bad Call-ID {message.call_id[:60]!r}")
    if isinstance(message, SipRequest):
        forwards = message.get("max-forwards")
        if forwards is not None and (not forwards.isdigit() or int(forwards) > 255):
            raise SipParseError(f"bad Max-Forwards {forwards[:20]!r}")
        parse_uri(message.uri)


# ------------------------------------------------------------------ header values

@dataclass(frozen=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    @property
    def branch(self) -> str:
        return self.params.get("branch") or ""


_VIA = re.compile(r"^SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)\s+([^;\s]+)\s*(;.*)?$", re.IGNORECASE)


def parse_via(value: str) -> Via:
    match = _VIA.match(value.strip())
    if not match:
        raise SipParseError(f"bad Via header {value[:80]!r}: expected 'SIP/2.0/UDP host;...'")
    transport, hostport, params = match.groups()
    host, port = split_hostport(hostport, f"Via {value[:60]!r}")
    return Via(transport.upper(), host, port, parse_params(params or ""))


def split_hostport(hostport: str, where: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipParseError(f"bad IPv6 host in {where}")
        host, rest = hostport[: end + 1], hostport[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise SipParseError(f"bad host:port in {where}")
    else:
        host, _, port_text = hostport.partition(":")
    if not host or not re.match(r"^[A-Za-z0-9.\-_\[\]:]+$", host):
        raise SipParseError(f"bad host {host[:40]!r} in {where}")
    if port_text == "":
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SipParseError(f"bad port {port_text[:10]!r} in {where}")
    return host, int(port_text)


def parse_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        params[key.strip().lower()] = value.strip().strip('"') if eq else None
    return params


@dataclass(frozen=True)
class SipUri:
    scheme: str
    user: str
    host: str
    port: int | None
    params: dict[str, str | None]
    password: str = ""

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"{self.scheme}:{user}{self.host}{port}{params}"


def parse_uri(text: str) -> SipUri:
    scheme, colon, rest = text.strip().partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("sip", "sips", "tel"):
        raise SipParseError(f"bad URI {text[:80]!r}: expected sip:, sips: or tel:")
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise SipParseError(f"bad tel URI {text[:80]!r}: no number")
        return SipUri("tel", number, "", None, parse_params(params))
    rest, _, _headers = rest.partition("?")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        hostpart, userinfo = rest, ""
    user, _, password = userinfo.partition(":")
    hostport, _, params = hostpart.partition(";")
    host, port = split_hostport(hostport, f"URI {text[:60]!r}")
    return SipUri(scheme, user, host, port, parse_params(params), password)


@dataclass(frozen=True)
class NameAddr:
    display: str
    uri: str
    params: dict[str, str | None]

    @property
    def tag(self) -> str:
        return self.params.get("tag") or ""


def parse_name_addr(value: str) -> NameAddr:
    """``"Alice" <sip:a@x>;tag=1`` or ``sip:a@x;tag=1`` (params after a bare URI: header's)."""
    text = value.strip()
    if "<" in text:
        start = text.index("<")
        end = text.find(">", start)
        if end < 0:
            raise SipParseError(f"bad address {value[:80]!r}: '<' without '>'")
        display = text[:start].strip().strip('"')
        uri, params = text[start + 1:end], text[end + 1:]
    else:
        uri, _, rest = text.partition(";")
        display, params = "", ";" + rest if rest else ""
    if not uri:
        raise SipParseError(f"bad address {value[:80]!r}: empty URI")
    parse_uri(uri)
    return NameAddr(display, uri, parse_params(params))
