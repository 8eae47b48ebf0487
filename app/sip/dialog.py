"""A SIP dialog (RFC 3261 §12): the state that makes requests inside one call.

Requests we send inside the dialog go to the transport address the dialog was set up with
(the trunk, SBC or phone that sent or answered the INVITE); Hotline does no DNS of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.sip.message import SipRequest, SipResponse, parse_name_addr
from app.sip.transactions import new_branch
from app.sip.transport import Peer


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_party: str  # our From in requests we send (name-addr with our tag)
    remote_party: str  # their address, To in requests we send (with their tag)
    remote_target: str  # their Contact URI: the Request-URI of our requests
    peer: Peer
    via_host: str
    via_port: int
    local_contact: str
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 1
    remote_cseq: int = 0

    @classmethod
    def as_uas(cls, invite: SipRequest, peer: Peer, local_tag: str, via_host: str,
               via_port: int, local_contact: str) -> Dialog:
        contact = invite.get("contact")
        target = parse_name_addr(contact).uri if contact else parse_name_addr(
            invite.get("from") or "").uri
        return cls(
            call_id=invite.call_id, local_tag=local_tag,
            remote_tag=parse_name_addr(invite.get("from") or "").tag,
            local_party=f"{invite.get('to')};tag={local_tag}",
            remote_party=invite.get("from") or "", remote_target=target, peer=peer,
            via_host=via_host, via_port=via_port, local_contact=local_contact,
            route_set=invite.get_all("record-route"), remote_cseq=invite.cseq[0],
        )

    @classmethod
    def as_uac(cls, invite: SipRequest, response: SipResponse, peer: Peer, via_host: str,
               via_port: int, local_contact: str) -> Dialog:
        contact = response.get("contact")
        to = response.get("to") or ""
        return cls(
            call_id=invite.call_id, local_tag=parse_name_addr(invite.get("from") or "").tag,
            remote_tag=parse_name_addr(to).tag, local_party=invite.get("from") or "",
            remote_party=to,
            remote_target=parse_name_addr(contact).uri if contact else invite.uri, peer=peer,
            via_host=via_host, via_port=via_port, local_contact=local_contact,
            route_set=list(reversed(response.get_all("record-route"))),
            local_cseq=invite.cseq[0],
        )

    def request(self, method: str, *, body: bytes = b"", content_type: str | None = None,
                extra: list[tuple[str, str]] | None = None, cseq: int | None = None
                ) -> SipRequest:
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        transport = self.peer.transport
        headers = [
            ("Via", f"SIP/2.0/{transport} {self.via_host}:{self.via_port};branch={new_branch()}"
                    ";rport"),
            ("Max-Forwards", "70"), ("From", self.local_party), ("To", self.remote_party),
            ("Call-ID", self.call_id), ("CSeq", f"{cseq} {method}"),
        ]
        headers += [("Route", route) for route in self.route_set]
        if method in ("INVITE", "UPDATE"):
            headers.append(("Contact", self.local_contact))
        headers += extra or []
        if body and content_type:
            headers.append(("Content-Type", content_type))
        headers.append(("Content-Length", str(len(body))))
        return SipRequest(headers=headers, body=body, method=method, uri=self.remote_target)
