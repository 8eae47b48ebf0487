"""Who may call: trunks from settings, matched by source IP (CIDR) and/or digest credentials.

``TrunkTable.admit(request, source_ip)`` returns an ``Admission``: the trunk, or a 401
challenge to send, or a 403 with its reason. A trunk with an allow-list and no credentials
admits its addresses; one with credentials (and an allow-list or none) admits a request
whose digest checks out. Nothing else gets in.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from app.settings import SipTrunk
from app.sip.auth import DigestServer
from app.sip.message import SipRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Admission:
    trunk: SipTrunk | None
    status: int  # 0 admitted, 401 challenge, 403 refused
    reason: str = ""
    challenge: str = ""


class TrunkTable:
    def __init__(self, trunks: list[SipTrunk], digest: DigestServer | None = None) -> None:
        self.trunks = trunks
        self.digest = digest or DigestServer()
        self._nets: list[tuple[SipTrunk, list[Network]]] = []
        for trunk in trunks:
            try:
                nets = [ipaddress.ip_network(c, strict=False) for c in trunk.allow]
            except ValueError as exc:
                raise ValueError(f"sip_trunks[{trunk.name}].allow: {exc}") from exc
            self._nets.append((trunk, nets))

    def by_name(self, name: str) -> SipTrunk:
        for trunk in self.trunks:
            if trunk.name == name:
                return trunk
        raise KeyError(f"no SIP trunk named {name!r} (have: "
                       f"{', '.join(t.name for t in self.trunks) or 'none'})")

    def admit(self, request: SipRequest, source_ip: str) -> Admission:
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return Admission(None, 403, f"bad source address {source_ip!r}")
        by_ip = [t for t, nets in self._nets if any(address in n for n in nets)]
        for trunk in by_ip:
            if not trunk.username:
                return Admission(trunk, 0)
        candidates = [t for t, nets in self._nets if t.username and (t in by_ip or not nets)]
        if not candidates:
            return Admission(None, 403, f"source {source_ip} is not an allowed trunk")
        header = request.get("authorization") or ""
        realm = candidates[0].realm
        if not header:
            return Admission(None, 401, "credentials required",
                             self.digest.challenge(realm))
        for trunk in candidates:
            verdict = self.digest.verify(header, request.method,
                                         {trunk.username or "": trunk.password or ""},
                                         trunk.realm)
            if verdict.ok:
                return Admission(trunk, 0)
            if verdict.stale:
                return Admission(None, 401, "stale nonce", self.digest.challenge(realm, True))
        return Admission(None, 403, "digest credentials rejected")
