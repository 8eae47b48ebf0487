"""Calls out (Hotline as the caller): ``dial`` rings a SIP URI or, through a trunk, a number.

This is the leg the routing engine uses to ring an agent's landline or mobile::

    result = await dial(sip, "sip:agent@10.0.0.5:5060")          # a phone, directly
    result = await dial(sip, "13800138000", trunk="carrier")     # a number, via a trunk
    result = await dial(sip, target, caller_id="4008001234", ring_timeout_s=25,
                        on_ringing=lambda: ..., cancel=asyncio.Event())
    if result.answered:
        leg = result.media          # a CallMedia (RtpCallMedia, 8 kHz): bridge it, play to it
        ...
        await leg.close()           # our hang-up: BYE

``sip`` is the process's ``SipService`` (``app.state.sip``). ``result.outcome`` is one of
``answered``, ``busy`` (486/600), ``declined`` (603), ``no_answer`` (ring timeout, 408, 480),
``not_found`` (404/484/604), ``unavailable`` (5xx, no route), ``cancelled`` (``cancel`` was set),
``failed`` (anything else), with the SIP ``status`` and ``reason``. 401/407 challenges are
answered with the trunk's credentials. Early media (183 with SDP) starts the leg before the
answer; ``on_early_media(leg)`` is told. A far-end BYE ends the leg (``end_reason``
``caller_hangup``: the other party hung up).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from app.media.rtp_leg import RtpCallMedia
from app.metrics import SIP_CALLS_ACTIVE
from app.settings import SipTrunk
from app.sip import sdp
from app.sip.auth import authorization
from app.sip.dialog import Dialog
from app.sip.message import SipRequest, SipResponse, parse_uri
from app.sip.register import proxy_peer
from app.sip.transactions import (
    ClientTransaction,
    ServerTransaction,
    make_response,
    new_branch,
    new_tag,
)
from app.sip.transport import Peer

if TYPE_CHECKING:
    from app.sip.service import SipService

DialOutcome = Literal["answered", "busy", "declined", "no_answer", "not_found", "unavailable",
                      "cancelled", "failed"]
DTMF_PT = 101


@dataclass(frozen=True)
class DialResult:
    outcome: DialOutcome
    status: int
    reason: str
    media: RtpCallMedia | None = None
    call: OutboundCall | None = None  # the dialog (in-dialog requests: INFO, re-INVITE)

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"


def outcome_for(status: int) -> DialOutcome:
    if 200 <= status < 300:
        return "answered"
    if status in (486, 600):
        return "busy"
    if status == 603:
        return "declined"
    if status in (408, 480):
        return "no_answer"
    if status in (404, 484, 604):
        return "not_found"
    if status == 487:
        return "cancelled"
    if status >= 500:
        return "unavailable"
    return "failed"


def resolve_target(service: SipService, target: str, trunk_name: str | None
                   ) -> tuple[str, Peer, SipTrunk | None]:
    """(Request-URI, next hop, trunk) for a SIP URI or a phone number."""
    if target.startswith(("sip:", "sips:")):
        uri = parse_uri(target)
        peer = Peer(str(uri.params.get("transport") or "udp").upper(), uri.host,
                    uri.port or 5060)
        trunk = service.trunks.by_name(trunk_name) if trunk_name else None
        if trunk is not None and trunk.proxy:
            peer = proxy_peer(trunk)
        return target, peer, trunk
    number = target.removeprefix("tel:").split(";")[0]
    if not number or not all(c.isdigit() or c in "+*#" for c in number):
        raise ValueError(f"dial target {target!r} is neither a SIP URI nor a phone number")
    trunks = [service.trunks.by_name(trunk_name)] if trunk_name else [
        t for t in service.trunks.trunks if t.proxy]
    if not trunks or not trunks[0].proxy:
        raise ValueError(f"no trunk with a proxy to reach {number} (set sip_trunks[].proxy)")
    trunk = trunks[0]
    peer = proxy_peer(trunk)
    return f"sip:{number}@{trunk.domain or peer.host}", peer, trunk


class OutboundCall:
    """The dialog side of a call we placed: in-dialog requests, our BYE."""

    def __init__(self, service: SipService, media: RtpCallMedia) -> None:
        self.service = service
        self.media = media
        self.dialog: Dialog | None = None
        self.state = "calling"
        self.ack: SipRequest | None = None
        SIP_CALLS_ACTIVE.inc()

    def handle(self, request: SipRequest, peer: Peer, tx: ServerTransaction | None) -> None:
        if tx is None:
            return  # ACK: nothing to do for a UAC
        if request.method == "BYE":
            tx.respond(make_response(request, 200))
            self.state = "ended"
            self.media.end("caller_hangup")
            self.service.forget(self)
        elif request.method in ("INVITE", "UPDATE") and self.dialog is not None:
            self._reoffer(request, tx)
        elif request.method in ("INFO", "OPTIONS"):
            tx.respond(make_response(request, 200))
        else:
            tx.respond(make_response(request, 405))

    def _reoffer(self, request: SipRequest, tx: ServerTransaction) -> None:
        try:
            chosen = sdp.negotiate(sdp.parse(request.body), (self.media.codec,))
        except sdp.SdpError as exc:
            tx.respond(make_response(request, 488, str(exc)[:120]))
            return
        self.media.configure(codec=chosen.codec, payload_type=chosen.payload_type,
                             dtmf_payload_type=chosen.dtmf_payload_type,
                             remote_host=chosen.remote_host, remote_port=chosen.remote_port,
                             remote_direction=chosen.direction)
        assert self.dialog is not None
        answer = _offer(self.service, self.media, [(self.media.codec, self.media.payload_type)],
                        sdp.ANSWER_DIRECTION.get(chosen.direction, "sendrecv"))
        tx.respond(make_response(request, 200, to_tag=self.dialog.local_tag, body=answer,
                                 content_type="application/sdp",
                                 extra=[("Contact", self.dialog.local_contact)]))

    def hangup(self) -> None:
        if self.state == "ended":
            return
        if self.state == "confirmed" and self.dialog is not None:
            self.service.send_in_dialog(self.dialog.request("BYE"), self.dialog.peer)
        self.state = "ended"
        self.service.forget(self)

    def forgotten(self) -> None:
        SIP_CALLS_ACTIVE.dec()


def _offer(service: SipService, media: RtpCallMedia, codecs: list[tuple[str, int]],
           direction: str = "sendrecv") -> bytes:
    return sdp.build(session_id=int(time.time()), version=1, host=service.public_host,
                     port=media.local_port, codecs=codecs, dtmf_payload_type=DTMF_PT,
                     direction=direction).serialize()


def _invite(service: SipService, uri: str, peer: Peer, caller_id: str, body: bytes,
            call_id: str, tag: str, cseq: int, auth: tuple[str, str] | None,
            headers: list[tuple[str, str]]) -> SipRequest:
    host = service.public_host
    fields = [
        ("Via", f"SIP/2.0/{peer.transport} {host}:{service.port};branch={new_branch()};rport"),
        ("Max-Forwards", "70"), ("From", f"<sip:{caller_id}@{host}>;tag={tag}"),
        ("To", f"<{uri}>"), ("Call-ID", call_id), ("CSeq", f"{cseq} INVITE"),
        ("Contact", service.contact(peer.transport)), ("Allow", "INVITE, ACK, BYE, CANCEL, "
                                                       "OPTIONS, INFO, UPDATE"),
        *headers,
    ]
    if auth:
        fields.append(auth)
    fields += [("Content-Type", "application/sdp"), ("Content-Length", str(len(body)))]
    return SipRequest(headers=fields, body=body, method="INVITE", uri=uri)


def _cancel_for(invite: SipRequest) -> SipRequest:
    headers = [("Via", invite.get_all("via")[0]), ("Max-Forwards", "70"),
               ("From", invite.get("from") or ""), ("To", invite.get("to") or ""),
               ("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq[0]} CANCEL"),
               ("Content-Length", "0")]
    return SipRequest(headers=headers, method="CANCEL", uri=invite.uri)


async def dial(service: SipService, target: str, *, caller_id: str = "hotline",
               trunk: str | None = None, ring_timeout_s: float | None = None,
               on_ringing: Callable[[], None] | None = None,
               on_early_media: Callable[[RtpCallMedia], None] | None = None,
               cancel: asyncio.Event | None = None,
               headers: list[tuple[str, str]] | None = None) -> DialResult:
    """Ring ``target``; see the module docstring. Never raises for a call that fails."""
    try:
        uri, peer, route = resolve_target(service, target, trunk)
    except (ValueError, KeyError) as exc:
        return DialResult("unavailable", 0, str(exc))
    settings = service.settings
    media = await RtpCallMedia.open(settings.sip_host, settings.rtp_port_min,
                                    settings.rtp_port_max, trunk=route.name if route else "",
                                    timeout_s=settings.rtp_timeout_s,
                                    jitter_min_ms=settings.rtp_jitter_min_ms,
                                    jitter_max_ms=settings.rtp_jitter_max_ms)
    call = OutboundCall(service, media)
    media.on_local_close = call.hangup
    call_id = f"{new_tag()}{new_tag()}@{service.public_host}"
    service.dialogs[call_id] = call
    try:
        result = await _ring(service, call, uri, peer, route, call_id, caller_id,
                             ring_timeout_s or settings.sip_ring_timeout_s, on_ringing,
                             on_early_media, cancel, headers or [])
    except BaseException:
        call.state = "ended"
        service.forget(call)
        await media.close()
        raise
    if not result.answered:
        call.state = "ended"
        service.forget(call)
        media.on_local_close = None
        await media.close()
    return result


async def _ring(service: SipService, call: OutboundCall, uri: str, peer: Peer,
                route: SipTrunk | None, call_id: str, caller_id: str, ring_timeout_s: float,
                on_ringing: Callable[[], None] | None,
                on_early_media: Callable[[RtpCallMedia], None] | None,
                cancel: asyncio.Event | None, headers: list[tuple[str, str]]) -> DialResult:
    media = call.media
    codecs = [(c, sdp.CODECS[c]) for c in service.settings.sip_codecs]
    body = _offer(service, media, codecs)
    tag, auth, cseq = new_tag(), None, 1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ring_timeout_s

    def provisional(response: SipResponse) -> None:
        if response.status in (180, 183) and on_ringing is not None:
            on_ringing()
        if response.body and media.remote is None:
            with contextlib.suppress(sdp.SdpError):
                _configure(media, sdp.negotiate(sdp.parse(response.body)))
                media.start()
                if on_early_media is not None:
                    on_early_media(media)

    response: SipResponse | None = None
    for _attempt in range(2):
        invite = _invite(service, uri, peer, caller_id, body, call_id, tag, cseq, auth, headers)
        tx = service.endpoint.start_request(invite, peer, on_provisional=provisional)
        response = await _await_final(tx, deadline, cancel)
        if response is None:  # ring timeout or cancelled: CANCEL, then collect the final
            response = await _cancel(service, tx, invite, peer)
            if response is None or response.status >= 300:
                cancelled = cancel is not None and cancel.is_set()
                return DialResult("cancelled" if cancelled else "no_answer",
                                  response.status if response else 0,
                                  "cancelled" if cancelled else "ring timeout")
        if response.status in (401, 407) and route is not None and route.username and not auth:
            name = "www-authenticate" if response.status == 401 else "proxy-authenticate"
            try:
                value = authorization(response.get(name) or "", username=route.username,
                                      password=route.password or "", method="INVITE", uri=uri)
            except ValueError as exc:
                return DialResult("failed", response.status, str(exc))
            auth = ("Authorization" if response.status == 401 else "Proxy-Authorization", value)
            cseq += 1
            continue
        break
    assert response is not None
    if response.status >= 300:
        return DialResult(outcome_for(response.status), response.status, response.reason)
    result = _answered(service, call, invite, response, peer, tx)
    if cancel is not None and cancel.is_set():  # answered as we cancelled: hang up at once
        call.hangup()
        return DialResult("cancelled", response.status, "cancelled (answered meanwhile)")
    return result


def _answered(service: SipService, call: OutboundCall, invite: SipRequest,
              response: SipResponse, peer: Peer, tx: ClientTransaction) -> DialResult:
    media = call.media
    dialog = Dialog.as_uac(invite, response, peer, service.public_host, service.port,
                           service.contact(peer.transport))
    call.dialog = dialog
    ack = dialog.request("ACK", cseq=invite.cseq[0])
    call.ack = ack
    service.transport.send(ack, peer)
    tx.on_2xx_retransmit = lambda _r: service.transport.send(ack, peer)
    call.state = "confirmed"
    try:
        _configure(media, sdp.negotiate(sdp.parse(response.body)))
    except sdp.SdpError as exc:
        call.hangup()
        return DialResult("failed", response.status, f"unusable SDP answer: {exc}")
    media.start()
    return DialResult("answered", response.status, response.reason, media, call)


def _configure(media: RtpCallMedia, chosen: sdp.Negotiated) -> None:
    media.configure(codec=chosen.codec, payload_type=chosen.payload_type,
                    dtmf_payload_type=chosen.dtmf_payload_type, remote_host=chosen.remote_host,
                    remote_port=chosen.remote_port, remote_direction=chosen.direction)


async def _await_final(tx: ClientTransaction, deadline: float,
                       cancel: asyncio.Event | None) -> SipResponse | None:
    waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(asyncio.shield(tx.future))}
    cancel_wait = None
    if cancel is not None:
        cancel_wait = asyncio.ensure_future(cancel.wait())
        waiters.add(cancel_wait)
    timeout_s = max(0.0, deadline - asyncio.get_running_loop().time())
    done, pending = await asyncio.wait(waiters, timeout=timeout_s,
                                       return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if tx.future.done() and not tx.future.cancelled():
        return tx.future.result()
    return None


async def _cancel(service: SipService, tx: ClientTransaction, invite: SipRequest,
                  peer: Peer) -> SipResponse | None:
    if tx.provisional is None:  # nothing heard yet: stop retransmitting, nothing to cancel
        tx.terminate()
        return None
    with contextlib.suppress(asyncio.CancelledError):
        await service.endpoint.request(_cancel_for(invite), peer)
    try:
        async with asyncio.timeout(5.0):
            return await asyncio.shield(tx.future)
    except (TimeoutError, asyncio.CancelledError):
        tx.terminate()
        return None
