"""RFC 3261 §17 transactions over ``SipTransport``: retransmission timers, matching, absorbing.

Server side: a retransmitted request gets the last response again; an INVITE's final response
is retransmitted over UDP (Timer G, T1 doubling up to T2) until its ACK arrives or Timer H
(64*T1) fires; a 2xx is retransmitted the same way until the dialog sees its ACK
(``ack_received``). Client side: ``request()`` retransmits over UDP (Timers A/E), returns the
final response (a synthetic 408 after Timer B/F), passes provisional ones to a callback, and
ACKs a non-2xx final response to an INVITE itself. Timers are loop ``call_later`` handles,
not tasks: an idle transaction costs nothing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from app.log import get_logger
from app.sip.message import SipMessage, SipRequest, SipResponse, parse_via
from app.sip.transport import Peer, SipTransport

T1_S, T2_S, T4_S = 0.5, 4.0, 5.0
MAGIC = "z9hG4bK"
REASONS = {
    100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK", 202: "Accepted",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 407: "Proxy Authentication Required", 408: "Request Timeout",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    422: "Session Interval Too Small", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 603: "Decline",
}


def new_branch() -> str:
    return MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def make_response(request: SipRequest, status: int, reason: str | None = None, *,
                  to_tag: str | None = None, body: bytes = b"",
                  content_type: str | None = None,
                  extra: list[tuple[str, str]] | None = None) -> SipResponse:
    """A response copying Via/From/To/Call-ID/CSeq (§8.2.6), and Record-Route in a 1xx/2xx
    to an INVITE (§12.1.1); ``to_tag`` added if absent."""
    copied: tuple[str, ...] = ("via", "v", "from", "f", "call-id", "i", "cseq")
    if request.method == "INVITE" and 100 < status < 300:  # dialog-forming (§12.1.1): the
        copied += ("record-route",)  # caller learns the route set a proxy (Kamailio) put in
    headers = [(k, v) for k, v in request.headers if k.lower() in copied]
    to = request.get("to") or ""
    if to_tag and ";tag=" not in to.replace(" ", "").lower():
        to = f"{to};tag={to_tag}"
    headers.insert(next((i for i, (k, _) in enumerate(headers)
                         if k.lower() in ("call-id", "i")), len(headers)), ("To", to))
    headers += extra or []
    if content_type and body:
        headers.append(("Content-Type", content_type))
    headers.append(("Content-Length", str(len(body))))
    return SipResponse(headers=headers, body=body, status=status,
                       reason=reason or REASONS.get(status, "Unknown"))


def _key(message: SipMessage, method: str) -> tuple[str, str, str]:
    via = parse_via(message.get_all("via")[0])
    branch = via.branch
    if not branch.startswith(MAGIC):  # RFC 2543 peer: fall back to Call-ID + CSeq number
        branch = f"{message.call_id}/{message.cseq[0]}/{branch}"
    return branch, f"{via.host}:{via.port or 5060}", method


class ServerTransaction:
    def __init__(self, endpoint: SipEndpoint, request: SipRequest, peer: Peer,
                 key: tuple[str, str, str]) -> None:
        self.endpoint = endpoint
        self.request = request
        self.peer = peer
        self.key = key
        self.last: SipResponse | None = None
        self.acked = False
        self.on_no_ack: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._interval = T1_S
        self._started = 0.0

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    @property
    def final(self) -> bool:
        return self.last is not None and self.last.status >= 200

    def respond(self, response: SipResponse) -> None:
        if self.final:
            return  # one final response per transaction
        self.last = response
        self.endpoint.transport.send(response, self.peer)
        if response.status < 200:
            return
        loop = asyncio.get_running_loop()
        if self.is_invite and self.peer.transport == "UDP":
            self._started = loop.time()
            self._timer = loop.call_later(self._interval, self._retransmit)
        else:  # Timer J / the INVITE's wait for ACK over TCP: keep matching for a while
            linger_s = 64 * T1_S if self.peer.transport == "UDP" else 32.0
            self._timer = loop.call_later(linger_s, self.terminate)

    def _retransmit(self) -> None:
        loop = asyncio.get_running_loop()
        if self.acked or self.last is None:
            return
        if loop.time() - self._started >= 64 * T1_S:  # Timer H: the ACK never came
            self.terminate()
            if self.on_no_ack is not None:
                self.on_no_ack()
            return
        self.endpoint.transport.send(self.last, self.peer)
        self._interval = min(2 * self._interval, T2_S)
        self._timer = loop.call_later(self._interval, self._retransmit)

    def ack_received(self) -> None:
        self.acked = True
        if self._timer is not None:
            self._timer.cancel()
        linger_s = T4_S if self.peer.transport == "UDP" else 0.0  # Timer I
        self._timer = asyncio.get_running_loop().call_later(linger_s, self.terminate)

    def retransmitted(self) -> None:
        if self.last is not None:
            self.endpoint.transport.send(self.last, self.peer)

    def terminate(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.endpoint.server.pop(self.key, None)


class ClientTransaction:
    def __init__(self, endpoint: SipEndpoint, request: SipRequest, peer: Peer,
                 on_provisional: Callable[[SipResponse], None] | None) -> None:
        self.endpoint = endpoint
        self.request = request
        self.peer = peer
        self.on_provisional = on_provisional
        self.on_2xx_retransmit: Callable[[SipResponse], None] | None = None
        self.future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self.provisional: SipResponse | None = None
        self._interval = T1_S
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.key = _key(request, request.method)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.endpoint.transport.send(self.request, self.peer)
        if self.peer.transport == "UDP":
            self._timer = loop.call_later(self._interval, self._retransmit)
        self._deadline = loop.call_later(64 * T1_S, self._timeout)

    def _retransmit(self) -> None:
        if self.future.done():
            return
        if self.provisional is not None and self.request.method == "INVITE":
            return  # Timer A stops once the INVITE is answered provisionally
        self.endpoint.transport.send(self.request, self.peer)
        cap = T2_S if self.request.method != "INVITE" or self.provisional else 1e9
        self._interval = min(2 * self._interval, cap)
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._retransmit)

    def _timeout(self) -> None:
        if self.future.done():
            return
        if self.request.method == "INVITE" and self.provisional is not None:
            return  # a ringing INVITE waits for its final response (the TU's ring timeout)
        self.future.set_result(make_response(self.request, 408, "Request Timeout (no answer)"))
        self.terminate()

    def received(self, response: SipResponse) -> None:
        if response.status < 200:
            self.provisional = response
            if self.on_provisional is not None and not self.future.done():
                self.on_provisional(response)
            return
        if self.future.done():
            if 200 <= response.status < 300 and self.on_2xx_retransmit is not None:
                self.on_2xx_retransmit(response)
            elif response.status >= 300 and self.request.method == "INVITE":
                self._ack_failure(response)
            return
        if self.request.method == "INVITE" and response.status >= 300:
            self._ack_failure(response)
        self.future.set_result(response)
        if self._timer is not None:
            self._timer.cancel()
        linger_s = 64 * T1_S if self.request.method == "INVITE" else T4_S
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = asyncio.get_running_loop().call_later(linger_s, self.terminate)

    def _ack_failure(self, response: SipResponse) -> None:
        """§17.1.1.3: the ACK for a non-2xx final response is part of the transaction."""
        request = self.request
        headers = [("Via", request.get_all("via")[0]), ("Max-Forwards", "70"),
                   ("From", request.get("from") or ""), ("To", response.get("to") or ""),
                   ("Call-ID", request.call_id), ("CSeq", f"{request.cseq[0]} ACK")]
        headers += [("Route", r) for r in request.get_all("route")]
        headers.append(("Content-Length", "0"))
        ack = SipRequest(headers=headers, method="ACK", uri=request.uri)
        self.endpoint.transport.send(ack, self.peer)

    def terminate(self) -> None:
        for timer in (self._timer, self._deadline):
            if timer is not None:
                timer.cancel()
        if not self.future.done():
            self.future.cancel()
        self.endpoint.client.pop(self.key, None)


RequestHandler = Callable[[SipRequest, Peer, ServerTransaction | None], None]


class SipEndpoint:
    """The transaction layer: matches what arrives, hands new requests to the core."""

    def __init__(self, transport: SipTransport) -> None:
        self.transport = transport
        self.on_request: RequestHandler = lambda _r, _p, _t: None
        self.server: dict[tuple[str, str, str], ServerTransaction] = {}
        self.client: dict[tuple[str, str, str], ClientTransaction] = {}
        self.log = get_logger(component="sip")

    def handle(self, message: SipMessage, peer: Peer) -> None:
        if isinstance(message, SipResponse):
            method = message.cseq[1]
            tx = self.client.get(_key(message, method))
            if tx is not None:
                tx.received(message)
            return
        assert isinstance(message, SipRequest)
        if message.method == "ACK":
            invite = self.server.get(_key(message, "INVITE"))
            if invite is not None and invite.last is not None and invite.last.status >= 300:
                invite.ack_received()  # the ACK of our error response: absorbed
                return
            self.on_request(message, peer, None)  # a 2xx ACK belongs to the dialog
            return
        key = _key(message, message.method)
        existing = self.server.get(key)
        if existing is not None:
            existing.retransmitted()
            return
        server_tx = ServerTransaction(self, message, peer, key)
        self.server[key] = server_tx
        self.on_request(message, peer, server_tx)

    def invite_for_cancel(self, cancel: SipRequest) -> ServerTransaction | None:
        return self.server.get(_key(cancel, "INVITE"))

    async def request(self, request: SipRequest, peer: Peer, *,
                      on_provisional: Callable[[SipResponse], None] | None = None,
                      ) -> SipResponse:
        tx = self.start_request(request, peer, on_provisional=on_provisional)
        return await asyncio.shield(tx.future)

    def start_request(self, request: SipRequest, peer: Peer, *,
                      on_provisional: Callable[[SipResponse], None] | None = None,
                      ) -> ClientTransaction:
        tx = ClientTransaction(self, request, peer, on_provisional)
        self.client[tx.key] = tx
        tx.start()
        return tx

    def close(self) -> None:
        for stx in list(self.server.values()):
            stx.terminate()
        for ctx in list(self.client.values()):
            ctx.terminate()
