"""One inbound SIP call (Hotline as the callee): answer, media, in-dialog requests, hang-up.

``InboundCall.setup()`` answers an admitted INVITE: reliable 180 first when the caller offers
100rel (PRACK), then 200 OK with our SDP answer (or our offer, when the INVITE had no SDP and
the ACK brings the answer). The call starts on the caller's ACK: ``CallManager.start_call``
on the ``RtpCallMedia`` leg, exactly as a WebRTC call. Inside the dialog: BYE, CANCEL (before
the answer), INFO DTMF, re-INVITE/UPDATE (hold, new media address, session refresh), OPTIONS.
Session timers (RFC 4028, the caller refreshes) end a call nobody refreshed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from app.call.manager import CallLimitError, UnknownHotlineError
from app.call.media import EndReason
from app.media.dtmf import parse_info_body
from app.media.rtp_leg import RtpCallMedia
from app.metrics import SIP_CALLS_ACTIVE, SIP_MALFORMED
from app.sip import sdp
from app.sip.dialog import Dialog
from app.sip.message import SipRequest, SipResponse
from app.sip.transactions import T1_S, ServerTransaction, make_response, new_tag
from app.sip.transport import Peer

if TYPE_CHECKING:
    from app.settings import SipTrunk
    from app.sip.service import SipService

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, PRACK, UPDATE"
SUPPORTED = "100rel, timer"


class InboundCall:
    def __init__(self, service: SipService, invite: SipRequest, peer: Peer,
                 tx: ServerTransaction, trunk: SipTrunk, hotline_number: str,
                 caller_number: str, offer: sdp.SessionDescription | None,
                 session_expires_s: int | None) -> None:
        self.service = service
        self.invite = invite
        self.peer = peer
        self.tx = tx
        self.trunk = trunk
        self.hotline_number = hotline_number
        self.caller_number = caller_number
        self.offer = offer
        self.session_expires_s = session_expires_s
        self.local_tag = new_tag()
        self.dialog = Dialog.as_uas(invite, peer, self.local_tag, service.public_host,
                                    service.port, service.contact(peer.transport))
        self.media: RtpCallMedia | None = None
        self.call_id: str | None = None  # the CallManager's id, once the call started
        self.state = "early"  # early -> answered -> confirmed -> ended
        self.log = service.log.bind(sip_call_id=invite.call_id)
        self._acked = asyncio.Event()
        self._pracked = asyncio.Event()
        self._sdp_version = 1
        self._session_id = int(time.time())
        self._reinvite_tx: ServerTransaction | None = None
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._answer_sdp: bytes = b""
        self._remote_direction = "sendrecv"
        SIP_CALLS_ACTIVE.inc()

    # ------------------------------------------------------------------ set-up
    async def setup(self) -> None:
        try:
            await self._setup()
        except asyncio.CancelledError:
            await self._release()
            raise
        except Exception as exc:  # a call never takes the node down
            self.log.error("sip_setup_failed", error=repr(exc))
            if not self.tx.final:
                self.tx.respond(make_response(self.invite, 500, to_tag=self.local_tag))
            await self._release()

    async def _setup(self) -> None:
        settings = self.service.settings
        try:
            self.media = await RtpCallMedia.open(
                settings.sip_host, settings.rtp_port_min, settings.rtp_port_max,
                trunk=self.trunk.name, timeout_s=settings.rtp_timeout_s,
                jitter_min_ms=settings.rtp_jitter_min_ms, jitter_max_ms=settings.rtp_jitter_max_ms,
            )
        except OSError as exc:
            self.log.error("rtp_ports_exhausted", error=str(exc))
            self.tx.respond(make_response(self.invite, 503, "No Media Ports",
                                          to_tag=self.local_tag, extra=[("Retry-After", "5")]))
            await self._release()
            return
        self.media.on_local_close = self.hangup
        if self.offer is not None:
            self._apply(sdp.negotiate(self.offer, tuple(settings.sip_codecs)))
        if self._wants_100rel():
            await self._reliable_ringing()
        self._answer_sdp = self._our_sdp()
        self.tx.on_no_ack = lambda: self._failed("no ACK for our 200 OK")
        self.tx.respond(self._ok(self.invite, self._answer_sdp))
        self.state = "answered"
        try:
            async with asyncio.timeout(64 * T1_S + 1):
                await self._acked.wait()
        except TimeoutError:
            self._failed("no ACK for our 200 OK")
            return
        if self.state == "ended":
            return
        self.state = "confirmed"
        self._arm_session_timer()
        self.media.start()
        if self.service.calls is None:
            if self.service.on_answered is not None:
                self.service.on_answered(self.media, self)
            return
        try:
            self.call_id = await self.service.calls.start_call(
                self.media, hotline_number=self.hotline_number,
                caller_number=self.caller_number, locale=None, channel="sip")
        except (UnknownHotlineError, ValueError, CallLimitError) as exc:
            # the flows changed under us, or the node filled up since the INVITE
            self.log.error("sip_call_not_started", reason=str(exc))
            self.hangup()
            return
        self.log.info("sip_call_started", call_id=self.call_id, trunk=self.trunk.name,
                      hotline=self.hotline_number, codec=self.media.codec)

    def _wants_100rel(self) -> bool:
        tokens = {t.lower() for t in self.invite.get_all("supported") +
                  self.invite.get_all("require")}
        return "100rel" in tokens

    async def _reliable_ringing(self) -> None:
        ringing = make_response(self.invite, 180, to_tag=self.local_tag, extra=[
            ("Contact", self.dialog.local_contact), ("Require", "100rel"), ("RSeq", "1")])
        interval = T1_S
        deadline = asyncio.get_running_loop().time() + 64 * T1_S
        while not self._pracked.is_set():
            self.service.transport.send(ringing, self.peer)
            if asyncio.get_running_loop().time() > deadline:
                break  # no PRACK: answer anyway (the 200 OK supersedes the provisional)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._pracked.wait()
            interval = min(2 * interval, 4.0)

    def _apply(self, chosen: sdp.Negotiated) -> None:
        assert self.media is not None
        self.media.configure(codec=chosen.codec, payload_type=chosen.payload_type,
                             dtmf_payload_type=chosen.dtmf_payload_type,
                             remote_host=chosen.remote_host, remote_port=chosen.remote_port,
                             remote_direction=chosen.direction)
        self._remote_direction = chosen.direction

    def _our_sdp(self) -> bytes:
        assert self.media is not None
        dtmf: int | None
        if self.offer is None:  # we offer: everything we speak
            codecs = [(c, sdp.CODECS[c]) for c in self.service.settings.sip_codecs]
            direction, dtmf = "sendrecv", 101
        else:
            codecs = [(self.media.codec, self.media.payload_type)]
            dtmf = self.media.dtmf_payload_type
            direction = sdp.ANSWER_DIRECTION.get(self._remote_direction, "sendrecv")
        return sdp.build(session_id=self._session_id, version=self._sdp_version,
                         host=self.service.public_host, port=self.media.local_port,
                         codecs=codecs, dtmf_payload_type=dtmf,
                         direction=direction).serialize()

    def _ok(self, request: SipRequest, body: bytes) -> SipResponse:
        extra = [("Contact", self.dialog.local_contact), ("Allow", ALLOW),
                 ("Supported", SUPPORTED)]
        if self.session_expires_s:
            extra += [("Session-Expires", f"{self.session_expires_s};refresher=uac"),
                      ("Require", "timer")]
        return make_response(request, 200, to_tag=self.local_tag, body=body,
                             content_type="application/sdp", extra=extra)

    # ------------------------------------------------------------------ in-dialog
    def handle(self, request: SipRequest, peer: Peer, tx: ServerTransaction | None) -> None:
        method = request.method
        if method == "ACK":
            self._on_ack(request)
            return
        assert tx is not None
        seq = request.cseq[0]
        if method not in ("PRACK",) and seq <= self.dialog.remote_cseq and method != "CANCEL":
            tx.respond(make_response(request, 500, "CSeq Out of Order"))
            return
        self.dialog.remote_cseq = max(self.dialog.remote_cseq, seq)
        if method == "BYE":
            tx.respond(make_response(request, 200))
            self._end("caller_hangup", send_bye=False)
        elif method == "INFO":
            self._on_info(request, tx)
        elif method in ("INVITE", "UPDATE"):
            self._on_offer(request, tx)
        elif method == "PRACK":
            self._pracked.set()
            tx.respond(make_response(request, 200))
        elif method == "OPTIONS":
            tx.respond(make_response(request, 200, extra=[("Allow", ALLOW)]))
        else:
            tx.respond(make_response(request, 405, extra=[("Allow", ALLOW)]))

    def _on_ack(self, ack: SipRequest) -> None:
        if self._reinvite_tx is not None and ack.cseq[0] == self._reinvite_tx.request.cseq[0]:
            self._reinvite_tx.ack_received()
            self._reinvite_tx = None
        elif ack.cseq[0] == self.invite.cseq[0]:
            self.tx.ack_received()
            if self.offer is None and ack.body and not self._acked.is_set():
                try:
                    self._apply(sdp.negotiate(sdp.parse(ack.body),
                                              tuple(self.service.settings.sip_codecs)))
                except sdp.SdpError as exc:
                    SIP_MALFORMED.labels("sdp").inc()
                    self.log.warning("sip_bad_ack_sdp", reason=str(exc))
                    self._acked.set()
                    self.hangup()
                    return
            self._acked.set()

    def cancel(self) -> bool:
        """CANCEL before the answer: 487 to the INVITE; True if it took effect."""
        if self.tx.final:
            return False
        self.tx.respond(make_response(self.invite, 487, to_tag=self.local_tag))
        self.state = "ended"
        self.service.forget(self)
        self.service.cancel_setup(self)
        return True

    def _on_info(self, request: SipRequest, tx: ServerTransaction) -> None:
        if not request.body:
            tx.respond(make_response(request, 200))  # an empty INFO: keepalive
            return
        try:
            digit, duration = parse_info_body(request.get("content-type") or "", request.body)
        except ValueError as exc:
            SIP_MALFORMED.labels("dtmf").inc()
            tx.respond(make_response(request, 415 if "is not DTMF" in str(exc) else 400,
                                     str(exc)[:100]))
            return
        tx.respond(make_response(request, 200))
        if self.media is not None:
            self.media.info_dtmf(digit, duration)  # dtmf-relay Duration is in ms

    def _on_offer(self, request: SipRequest, tx: ServerTransaction) -> None:
        """re-INVITE or UPDATE: new media address, hold/resume, session refresh."""
        if self.media is None or self.state not in ("confirmed", "answered"):
            tx.respond(make_response(request, 491))
            return
        if request.body:
            try:
                offer = sdp.parse(request.body)
                chosen = sdp.negotiate(offer, (self.media.codec,) + tuple(
                    c for c in self.service.settings.sip_codecs if c != self.media.codec))
            except sdp.SdpError as exc:
                SIP_MALFORMED.labels("sdp").inc()
                tx.respond(make_response(request, 488, str(exc)[:120]))
                return
            self.offer = offer
            self._apply(chosen)
            self._sdp_version += 1
            self.log.info("sip_media_update", direction=chosen.direction,
                          remote=f"{chosen.remote_host}:{chosen.remote_port}")
        expires = request.get("session-expires")
        if expires:
            value = expires.split(";")[0].strip()
            if value.isdigit() and int(value) >= 90:
                self.session_expires_s = int(value)
        self._arm_session_timer()
        tx.respond(self._ok(request, self._our_sdp()))
        if request.method == "INVITE":
            self._reinvite_tx = tx

    # ------------------------------------------------------------------ timers, end
    def _arm_session_timer(self) -> None:
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        if self.session_expires_s:
            self._refresh_timer = asyncio.get_running_loop().call_later(
                self.session_expires_s, self._session_expired)

    def _session_expired(self) -> None:
        self.log.warning("sip_session_expired", after_s=self.session_expires_s)
        self._end("session_expired", send_bye=True)

    def _failed(self, reason: str) -> None:
        self.log.warning("sip_call_failed", reason=reason)
        self._end("network_lost", send_bye=True)
        self._acked.set()

    def hangup(self) -> None:
        """Our side hangs up (the flow ended, the leg timed out): BYE once confirmed."""
        self._end("local_close", send_bye=True)

    def _end(self, reason: EndReason, *, send_bye: bool) -> None:
        if self.state == "ended":
            return
        answered = self.state in ("answered", "confirmed")
        self.state = "ended"
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        if self.media is not None:
            self.media.end(reason)
        if send_bye and answered:
            self.service.send_in_dialog(self.dialog.request("BYE"), self.peer)
        self.service.forget(self)
        if self.call_id is None and self.service.calls is not None:
            # never reached the call core: release the leg here
            self.service.spawn(self._release(), "sip-release")

    async def _release(self) -> None:
        if self.state != "ended":
            self.state = "ended"
            self.service.forget(self)
        if self.media is not None:
            self.media.on_local_close = None
            await self.media.close()

    def forgotten(self) -> None:
        SIP_CALLS_ACTIVE.dec()
