"""REGISTER to a carrier as a UAC (RFC 3261 §10): digest auth, refresh, back-off.

One ``Registration`` per trunk with ``register_to_proxy``: registers, answers a 401/407 digest
challenge, re-registers at 80% of the granted expiry, and after a failure (an error response
or no answer) retries after a back-off doubling from 5 s up to 5 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from app.settings import SipTrunk
from app.sip.auth import authorization
from app.sip.message import SipRequest, SipResponse, parse_name_addr
from app.sip.transactions import new_branch, new_tag
from app.sip.transport import Peer

if TYPE_CHECKING:
    from app.sip.service import SipService

BACKOFF_MIN_S, BACKOFF_MAX_S = 5.0, 300.0


def proxy_peer(trunk: SipTrunk) -> Peer:
    if not trunk.proxy:
        raise ValueError(f"trunk {trunk.name!r} has no proxy (host:port)")
    host, _, port = trunk.proxy.rpartition(":")
    if not host or not port.isdigit():
        host, port = trunk.proxy, "5060"
    return Peer(trunk.transport, host, int(port))


class Registration:
    def __init__(self, service: SipService, trunk: SipTrunk) -> None:
        self.service = service
        self.trunk = trunk
        self.peer = proxy_peer(trunk)
        self.state = "idle"  # registered | failed
        self.last_status = 0
        self.attempts = 0
        self.expires_s = 0
        self.registered = asyncio.Event()
        self._call_id = f"{new_tag()}@{service.public_host}"
        self._tag = new_tag()
        self._cseq = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sip-register-{self.trunk.name}")

    async def _run(self) -> None:
        backoff_s = BACKOFF_MIN_S
        while True:
            response = await self.register_once()
            self.last_status = response.status
            if 200 <= response.status < 300:
                self.state, backoff_s = "registered", BACKOFF_MIN_S
                self.expires_s = _granted_expiry(response, self.trunk.register_expires_s)
                self.registered.set()
                await asyncio.sleep(max(1.0, self.expires_s * 0.8))
            else:
                self.state = "failed"
                self.registered.clear()
                self.service.log.warning("sip_register_failed", trunk=self.trunk.name,
                                         status=response.status, retry_in_s=backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(2 * backoff_s, BACKOFF_MAX_S)

    async def register_once(self) -> SipResponse:
        self.attempts += 1
        response = await self.service.endpoint.request(self._request(None), self.peer)
        if response.status in (401, 407) and self.trunk.username:
            header = "www-authenticate" if response.status == 401 else "proxy-authenticate"
            challenge = response.get(header) or ""
            try:
                auth = authorization(challenge, username=self.trunk.username,
                                     password=self.trunk.password or "", method="REGISTER",
                                     uri=self._uri)
            except ValueError as exc:
                self.service.log.warning("sip_register_bad_challenge", reason=str(exc))
                return response
            name = "Authorization" if response.status == 401 else "Proxy-Authorization"
            response = await self.service.endpoint.request(self._request((name, auth)),
                                                           self.peer)
        return response

    @property
    def _uri(self) -> str:
        return f"sip:{self.trunk.domain or self.peer.host}"

    def _request(self, auth: tuple[str, str] | None) -> SipRequest:
        self._cseq += 1
        service = self.service
        user = self.trunk.username or "hotline"
        aor = f"<sip:{user}@{self.trunk.domain or self.peer.host}>"
        headers = [
            ("Via", f"SIP/2.0/{self.peer.transport} {service.public_host}:{service.port};"
                    f"branch={new_branch()};rport"),
            ("Max-Forwards", "70"), ("From", f"{aor};tag={self._tag}"), ("To", aor),
            ("Call-ID", self._call_id), ("CSeq", f"{self._cseq} REGISTER"),
            ("Contact", f"<sip:{user}@{service.public_host}:{service.port}>"),
            ("Expires", str(self.trunk.register_expires_s)),
        ]
        if auth:
            headers.append(auth)
        headers.append(("Content-Length", "0"))
        return SipRequest(headers=headers, method="REGISTER", uri=self._uri)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _granted_expiry(response: SipResponse, asked_s: int) -> int:
    for contact in response.get_all("contact"):
        with contextlib.suppress(ValueError):
            value = parse_name_addr(contact).params.get("expires")
            if value and value.isdigit():
                return int(value)
    header = response.get("expires")
    return int(header) if header and header.isdigit() else asked_s


def start_registrations(service: SipService) -> list[Registration]:
    registrations = []
    for trunk in service.settings.sip_trunks:
        if trunk.register_to_proxy:
            registration = Registration(service, trunk)
            registration.start()
            registrations.append(registration)
    return registrations
