"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 2617/7616 MD5, qop=auth).

Server: ``DigestServer.challenge()`` makes a ``WWW-Authenticate`` value with a stateless nonce
(time + HMAC); ``verify()`` checks an ``Authorization`` value against a user's password.
Client: ``authorization()`` answers a challenge (REGISTER and calls out through a trunk).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

NONCE_TTL_S = 300
_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324  (RFC 2617 digest)


def parse_digest(value: str) -> dict[str, str]:
    """``Digest a="b", c=d`` -> {a: b, c: d}; ValueError when it is not a Digest value."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"authentication scheme {scheme[:20]!r} is not Digest")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(rest)}
    if not params:
        raise ValueError("Digest header has no parameters")
    return params


def digest_response(*, username: str, realm: str, password: str, method: str, uri: str,
                    nonce: str, qop: str | None = None, nc: str = "", cnonce: str = "") -> str:
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    username: str = ""
    stale: bool = False
    reason: str = ""


class DigestServer:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(16)

    def _nonce(self, issued: int) -> str:
        mac = hmac.new(self._secret, str(issued).encode(), hashlib.sha256).hexdigest()[:24]
        return f"{issued:x}.{mac}"

    def challenge(self, realm: str, stale: bool = False) -> str:
        nonce = self._nonce(int(time.time()))
        extra = ", stale=true" if stale else ""
        return f'Digest realm="{realm}", nonce="{nonce}", algorithm=MD5, qop="auth"{extra}'

    def verify(self, header: str, method: str, users: dict[str, str], realm: str) -> Verdict:
        try:
            params = parse_digest(header)
        except ValueError as exc:
            return Verdict(False, reason=str(exc))
        username, nonce = params.get("username", ""), params.get("nonce", "")
        if username not in users:
            return Verdict(False, reason=f"unknown user {username[:40]!r}")
        if params.get("realm") != realm:
            return Verdict(False, reason="wrong realm")
        issued_hex, _, _ = nonce.partition(".")
        try:
            issued = int(issued_hex, 16)
        except ValueError:
            return Verdict(False, reason="bad nonce")
        if not hmac.compare_digest(self._nonce(issued), nonce):
            return Verdict(False, reason="bad nonce")
        expected = digest_response(
            username=username, realm=realm, password=users[username], method=method,
            uri=params.get("uri", ""), nonce=nonce, qop=params.get("qop"),
            nc=params.get("nc", ""), cnonce=params.get("cnonce", ""),
        )
        if not hmac.compare_digest(expected, params.get("response", "")):
            return Verdict(False, username, reason="wrong password")
        if time.time() - issued > NONCE_TTL_S:
            return Verdict(False, username, stale=True, reason="stale nonce")
        return Verdict(True, username)


def authorization(challenge: str, *, username: str, password: str, method: str,
                  uri: str) -> str:
    """The ``Authorization`` value answering a ``WWW-Authenticate`` challenge."""
    params = parse_digest(challenge)
    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    qop = None
    if "qop" in params:
        options = [q.strip() for q in params["qop"].split(",")]
        if "auth" not in options:
            raise ValueError(f"unsupported digest qop {params['qop']!r}")
        qop = "auth"
    nc, cnonce = "00000001", secrets.token_hex(8)
    response = digest_response(username=username, realm=realm, password=password,
                               method=method, uri=uri, nonce=nonce, qop=qop, nc=nc,
                               cnonce=cnonce)
    value = (f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
             f'response="{response}", algorithm=MD5')
    if qop:
        value += f', qop={qop}, nc={nc}, cnonce="{cnonce}"'
    if "opaque" in params:
        value += f', opaque="{params["opaque"]}"'
    return value
