"""The SIP service: transport + transactions + policy, started from the app lifespan.

``start_sip(settings, calls)`` listens on ``sip_host:sip_port`` (UDP and TCP) and answers:
OPTIONS (trunk keepalives) with 200; an INVITE after, in order, the per-source rate limit
(floods are dropped and counted), the trunk check (403, or a 401 digest challenge), the node's
``sip_max_calls`` (503 + Retry-After), extensions (420), session interval (422), the hotline
number (404), the SDP offer (400 malformed / 488 unacceptable). Requests inside a call go to
its ``InboundCall`` (or outbound ``OutboundCall``). Malformed SIP is answered 400 when its
Via/From/To/Call-ID/CSeq can still be found, else dropped; both are counted in /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from app.call.manager import CallLimitError
from app.log import get_logger
from app.media.rtp_leg import RtpCallMedia
from app.metrics import SIP_MALFORMED, SIP_REJECTED, SIP_REQUESTS
from app.settings import Settings
from app.sip import sdp
from app.sip.message import METHODS, SipRequest, parse_name_addr, parse_uri
from app.sip.ratelimit import RateLimiter
from app.sip.transactions import ServerTransaction, SipEndpoint, make_response
from app.sip.transport import Peer, SipTransport
from app.sip.trunks import TrunkTable
from app.sip.uas import ALLOW, SUPPORTED, InboundCall

MIN_SE_S = 90


class InDialog(Protocol):
    def handle(self, request: SipRequest, peer: Peer, tx: ServerTransaction | None) -> None: ...

    def forgotten(self) -> None: ...


class SipService:
    def __init__(self, settings: Settings, calls: Any,
                 on_answered: Callable[[RtpCallMedia, InboundCall], None] | None = None) -> None:
        self.settings = settings
        self.calls = calls  # app.call.manager.CallManager; None: a plain user agent
        # without a CallManager, answered calls go here (simulated callers, agent phones)
        self.on_answered = on_answered
        self.log = get_logger(component="sip")
        self.transport = SipTransport(self._on_message, self._on_malformed)
        self.endpoint = SipEndpoint(self.transport)
        self.endpoint.on_request = self._on_request
        self.trunks = TrunkTable(settings.sip_trunks)
        self.limiter = RateLimiter(settings.sip_rate_limit_per_s, settings.sip_rate_limit_burst)
        self.dialogs: dict[str, InDialog] = {}  # SIP Call-ID -> call
        self.setups: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counts = {"malformed_answered": 0, "malformed_dropped": 0, "rate_limited": 0}
        self.registrations: list[Any] = []

    async def start(self) -> None:
        await self.transport.start(self.settings.sip_host, self.settings.sip_port)
        self.log.info("sip_listening", host=self.transport.host, port=self.transport.port)

    @property
    def port(self) -> int:
        return self.transport.port

    @property
    def public_host(self) -> str:
        host = self.settings.sip_public_host or self.settings.sip_host
        return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host

    def contact(self, transport: str = "UDP") -> str:
        suffix = ";transport=tcp" if transport == "TCP" else ""
        return f"<sip:hotline@{self.public_host}:{self.port}{suffix}>"

    @property
    def active_calls(self) -> int:
        return len(self.dialogs)

    # ------------------------------------------------------------------ plumbing
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def forget(self, call: InDialog) -> None:
        for key, value in list(self.dialogs.items()):
            if value is call:
                del self.dialogs[key]
                call.forgotten()

    def cancel_setup(self, call: InboundCall) -> None:
        task = self.setups.pop(call.invite.call_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def send_in_dialog(self, request: SipRequest, peer: Peer) -> None:
        """Fire a request (BYE) in its own client transaction; the answer is only logged."""
        async def run() -> None:
            response = await self.endpoint.request(request, peer)
            self.log.info("sip_request_done", method=request.method, status=response.status,
                          sip_call_id=request.call_id)

        self.spawn(run(), f"sip-{request.method.lower()}")

    # ------------------------------------------------------------------ input
    def _on_message(self, message: Any, peer: Peer) -> None:
        try:
            self.endpoint.handle(message, peer)
        except Exception as exc:  # one bad message never takes the service down
            SIP_MALFORMED.labels("sip").inc()
            self.log.error("sip_handler_failed", error=repr(exc), peer=str(peer))

    def _on_malformed(self, data: bytes, peer: Peer, reason: str) -> None:
        SIP_MALFORMED.labels("sip").inc()
        answer = best_effort_400(data, reason)
        if answer is None:
            self.counts["malformed_dropped"] += 1
        else:
            self.counts["malformed_answered"] += 1
            self.transport.send(answer, peer)
        if sum(self.counts.values()) < 50 or sum(self.counts.values()) % 1000 == 0:
            self.log.warning("sip_malformed", peer=str(peer), reason=reason[:200],
                             answered=answer is not None)

    def _on_request(self, request: SipRequest, peer: Peer, tx: ServerTransaction | None) -> None:
        method = request.method
        SIP_REQUESTS.labels(method if method in METHODS else "other").inc()
        call = self.dialogs.get(request.call_id)
        to_tag = parse_name_addr(request.get("to") or "").tag
        if method == "CANCEL" and tx is not None:
            self._cancel(request, tx)
            return
        if call is not None and (to_tag or method == "ACK"):
            call.handle(request, peer, tx)
            return
        if tx is None:
            return  # a stray ACK
        forwards = request.get("max-forwards")
        if forwards is not None and forwards.isdigit() and int(forwards) == 0:
            tx.respond(make_response(request, 483))
        elif method == "INVITE" and not to_tag:
            self._invite(request, peer, tx)
        elif method == "INVITE" and call is not None:
            tx.respond(make_response(request, 491))  # INVITE glare before our answer
        elif method == "OPTIONS" and getattr(self.calls, "draining", False):
            # a draining node tells the dispatcher in front (Kamailio) to send calls elsewhere
            tx.respond(make_response(request, 503, "Service Unavailable (draining)",
                                     extra=[("Retry-After", "5")]))
        elif method == "OPTIONS":
            tx.respond(make_response(request, 200, extra=[
                ("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", SUPPORTED)]))
        elif method == "REGISTER":
            SIP_REJECTED.labels("not_registrar").inc()
            tx.respond(make_response(request, 405, extra=[("Allow", ALLOW)]))
        elif method in ("BYE", "INFO", "UPDATE", "PRACK", "INVITE", "NOTIFY"):
            tx.respond(make_response(request, 481))
        elif method in METHODS:
            tx.respond(make_response(request, 405, extra=[("Allow", ALLOW)]))
        else:
            tx.respond(make_response(request, 501))

    def _cancel(self, cancel: SipRequest, tx: ServerTransaction) -> None:
        invite_tx = self.endpoint.invite_for_cancel(cancel)
        call = self.dialogs.get(cancel.call_id)
        if invite_tx is None:
            tx.respond(make_response(cancel, 481))
            return
        tx.respond(make_response(cancel, 200))
        if isinstance(call, InboundCall) and call.tx is invite_tx:
            call.cancel()
        elif not invite_tx.final:
            invite_tx.respond(make_response(invite_tx.request, 487, to_tag="cancelled"))

    # ------------------------------------------------------------------ INVITE policy
    def _invite(self, request: SipRequest, peer: Peer, tx: ServerTransaction) -> None:
        if not self.limiter.allow(peer.host):
            self.counts["rate_limited"] += 1
            SIP_REJECTED.labels("rate_limited").inc()
            tx.terminate()  # dropped: a flood gets no answer, and no retransmission state
            return
        admission = self.trunks.admit(request, peer.host)
        if admission.status == 401:
            SIP_REJECTED.labels("auth").inc()
            tx.respond(make_response(request, 401, to_tag="auth", extra=[
                ("WWW-Authenticate", admission.challenge)]))
            return
        if admission.trunk is None:
            SIP_REJECTED.labels("forbidden").inc()
            self.log.warning("sip_forbidden", peer=str(peer), reason=admission.reason)
            tx.respond(make_response(request, 403, f"Forbidden ({admission.reason})"[:100],
                                     to_tag="denied"))
            return
        if self.active_calls >= self.settings.sip_max_calls or self._node_full():
            SIP_REJECTED.labels("overload").inc()
            reason = "draining" if getattr(self.calls, "draining", False) else "max calls"
            tx.respond(make_response(request, 503, f"Service Unavailable ({reason})",
                                     to_tag="busy", extra=[("Retry-After", "5")]))
            return
        self._admitted_invite(request, peer, tx, admission.trunk)

    def _node_full(self) -> bool:
        """The node's own limit (``max_calls``, every transport's calls together)."""
        if self.calls is None:
            return False
        try:
            self.calls.check_capacity()
        except CallLimitError:
            return True
        return False

    def _admitted_invite(self, request: SipRequest, peer: Peer, tx: ServerTransaction,
                         trunk: Any) -> None:
        unsupported = [t for t in request.get_all("require")
                       if t.lower() not in ("100rel", "timer")]
        if unsupported:
            tx.respond(make_response(request, 420, to_tag="ext",
                                     extra=[("Unsupported", ", ".join(unsupported))]))
            return
        session_expires = _session_expires(request)
        if session_expires is not None and session_expires < MIN_SE_S:
            tx.respond(make_response(request, 422, to_tag="se",
                                     extra=[("Min-SE", str(MIN_SE_S))]))
            return
        number = self._hotline_number(request, trunk)
        if number is None:
            SIP_REJECTED.labels("unknown_number").inc()
            dialled = parse_uri(request.uri).user or "(none)"
            tx.respond(make_response(request, 404, f"No hotline at number {dialled}"[:80],
                                     to_tag="nf"))
            return
        offer = None
        if request.body:
            try:
                offer = sdp.parse(request.body)
            except sdp.SdpError as exc:  # malformed: 400
                SIP_REJECTED.labels("malformed_sdp").inc()
                SIP_MALFORMED.labels("sdp").inc()
                tx.respond(make_response(request, 400, str(exc)[:120], to_tag="sdp"))
                return
            try:
                sdp.negotiate(offer, tuple(self.settings.sip_codecs))
            except sdp.SdpError as exc:  # well-formed, nothing we can take: 488
                SIP_REJECTED.labels("not_acceptable").inc()
                tx.respond(make_response(request, 488, str(exc)[:120], to_tag="sdp", extra=[
                    ("Warning", '304 hotline "media type not available"')]))
                return
        if session_expires is not None:
            session_expires = min(session_expires, self.settings.sip_session_expires_s)
        call = InboundCall(self, request, peer, tx, trunk, number, _caller_number(request),
                           offer, session_expires)
        self.dialogs[request.call_id] = call
        tx.respond(make_response(request, 100))
        task = self.spawn(call.setup(), f"sip-setup-{request.call_id[:16]}")
        self.setups[request.call_id] = task
        task.add_done_callback(lambda _t: self.setups.pop(request.call_id, None))

    def _hotline_number(self, request: SipRequest, trunk: Any) -> str | None:
        candidates: list[str] = []
        if trunk.number_header and request.get(trunk.number_header):
            with contextlib.suppress(ValueError):
                candidates.append(_user(request.get(trunk.number_header) or ""))
        with contextlib.suppress(ValueError):
            candidates.append(parse_uri(request.uri).user)
        with contextlib.suppress(ValueError):
            candidates.append(_user(request.get("to") or ""))
        if self.calls is None:  # a plain user agent answers any number
            return candidates[1] if len(candidates) > 1 else "anonymous"
        known = self.calls.hotlines
        for number in candidates:
            for variant in (number, number.lstrip("+")):
                if variant in known:
                    return variant
        return None

    async def aclose(self) -> None:
        for call in list(self.dialogs.values()):
            hangup = getattr(call, "hangup", None)
            if hangup is not None:
                hangup()
        await asyncio.sleep(0)  # the BYEs go out (their first send is immediate)
        for registration in self.registrations:
            await registration.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.endpoint.close()
        await self.transport.aclose()


def _user(value: str) -> str:
    return parse_uri(parse_name_addr(value).uri).user.split(";")[0]


def _caller_number(request: SipRequest) -> str:
    for header in ("p-asserted-identity", "from"):
        values = request.get_all(header)
        for value in values:
            try:
                user = _user(value)
            except ValueError:
                continue
            if user and user.lower() != "anonymous":
                return user
    return "anonymous"


def _session_expires(request: SipRequest) -> int | None:
    value = request.get("session-expires")
    if value is None:
        return None
    number = value.split(";")[0].strip()
    return int(number) if number.isdigit() else None


def best_effort_400(data: bytes, reason: str) -> bytes | None:
    """A 400 for a request we could not parse, if its routing headers are still readable."""
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    if not lines or lines[0].startswith(b"SIP/") or len(head) > 16_384:
        return None
    wanted = {b"via": [], b"v": [], b"from": [], b"f": [], b"to": [], b"t": [],
              b"call-id": [], b"i": [], b"cseq": []}  # type: dict[bytes, list[bytes]]
    for line in lines[1:]:
        name, colon, _ = line.partition(b":")
        key = name.strip().lower()
        if colon and key in wanted:
            wanted[key].append(line)
    picked: list[bytes] = []
    for names in ((b"via", b"v"), (b"from", b"f"), (b"to", b"t"), (b"call-id", b"i"),
                  (b"cseq",)):
        found = [ln for n in names for ln in wanted[n]]
        if len(found) != 1 and names[0] != b"via" or not found:
            return None
        picked += found
    safe = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in reason)[:120]
    try:
        body = b"\r\n".join([f"SIP/2.0 400 {safe}".encode(), *picked, b"Content-Length: 0"])
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return body + b"\r\n\r\n"


async def start_sip(settings: Settings, calls: Any) -> SipService:
    """Listen for SIP (UDP and TCP) and serve calls through ``calls`` (a ``CallManager``)."""
    service = SipService(settings, calls)
    await service.start()
    from app.sip.register import start_registrations

    service.registrations = start_registrations(service)
    return service
