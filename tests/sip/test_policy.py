"""Who gets in and what bad input gets back, over raw UDP against the real app (in process):
OPTIONS, 404/488/400/420/422/481, trunk allow-lists (403) and digest (401 -> admitted),
an INVITE flood (dropped and counted), an INVITE without SDP (offer in 200, answer in ACK)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.settings import SipTrunk
from app.sim.cli import serve_in_process
from app.sip.auth import authorization
from app.sip.message import SipResponse, parse
from tests.helpers.auth import ADMIN
from tests.helpers.live import Live, live_settings
from tests.sip.conftest import KO_FLOW, KO_NUMBER

SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP {pts}\r\n{maps}")


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.inbox.put_nowait(data)


class RawSip:
    def __init__(self, server_port: int) -> None:
        self.server = ("127.0.0.1", server_port)
        self.transport: asyncio.DatagramTransport | None = None
        self.proto = _Client()
        self.host, self.port = "", 0

    async def open(self, host: str = "127.0.0.1") -> RawSip:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self.proto,
                                                                local_addr=(host, 0))
        self.host, self.port = self.transport.get_extra_info("sockname")[:2]
        return self

    def request(self, method: str, number: str = KO_NUMBER, *, body: str = "",
                extra: str = "", call_id: str | None = None, cseq: int = 1,
                to_tag: str = "", branch: str | None = None) -> str:
        call_id = call_id or secrets.token_hex(6)
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        to = f"<sip:{number}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
        head = (f"{method} sip:{number}@127.0.0.1:{self.server[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch}\r\n"
                f"From: <sip:+861380000@{self.host}>;tag=raw\r\nTo: {to}\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:raw@{self.host}:{self.port}>\r\nMax-Forwards: 70\r\n{extra}")
        if body:
            head += "Content-Type: application/sdp\r\n"
        return head + f"Content-Length: {len(body.encode())}\r\n\r\n{body}"

    def send(self, text: str | bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(text.encode() if isinstance(text, str) else text, self.server)

    async def final(self, timeout_s: float = 10) -> SipResponse:
        while True:
            message = parse(await asyncio.wait_for(self.proto.inbox.get(), timeout_s))
            assert isinstance(message, SipResponse)
            if message.status >= 200:
                return message

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    trunks = [SipTrunk(name="carrier", allow=["127.0.0.1/32"]),
              SipTrunk(name="pbx", allow=["127.0.0.2/32"], username="pbx", password="s3cret",
                       realm="hotline")]
    settings = live_settings(tmp_path, flow=KO_FLOW, sip_enabled=True, sip_port=0,
                             sip_trunks=trunks, intent_model_dir=tmp_path / "no-intents",
                             sip_rate_limit_per_s=5, sip_rate_limit_burst=10)
    async with serve_in_process(settings) as served:
        yield Live(served.url, served.app, served.settings)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def test_answers_to_bad_and_unwelcome_requests(live: Live) -> None:
    client = await RawSip(live.app.state.sip.port).open()
    pcmu = SDP.format(pts="0 101", maps="a=rtpmap:101 telephone-event/8000\r\n")
    cases = [
        (client.request("OPTIONS"), 200, "OK"),
        (client.request("INVITE", "999", body=pcmu), 404, "No hotline at number 999"),
        (client.request("INVITE", body=SDP.format(pts="18", maps="")), 488,
         "no acceptable audio codec offered (G729/8000); Hotline speaks PCMU and PCMA"),
        (client.request("INVITE", body="v=0\r\nnonsense\r\n"), 400,
         "SDP line 2 is not 'x=value': 'nonsense'"),
        (client.request("INVITE", body=pcmu, extra="Require: foo\r\n"), 420, "Bad Extension"),
        (client.request("INVITE", body=pcmu, extra="Session-Expires: 30\r\n"), 422,
         "Session Interval Too Small"),
        (client.request("BYE", to_tag="x"), 481, "Call/Transaction Does Not Exist"),
        (client.request("REGISTER"), 405, "Method Not Allowed"),
        (client.request("INVITE").replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), 400,
         "CSeq method 'BYE' does not match the request method 'INVITE'"),
    ]
    try:
        for text, status, reason in cases:
            client.send(text)
            answer = await client.final()
            assert (answer.status, answer.reason) == (status, reason), text.splitlines()[0]
        client.send(b"\x00\x01 total garbage")  # nothing to answer to: dropped, counted
        client.send(client.request("OPTIONS"))
        assert (await client.final()).status == 200  # and the node still answers
    finally:
        client.close()
    async with httpx.AsyncClient(base_url=live.url, headers=ADMIN) as http:
        metrics = (await http.get("/metrics")).text
    assert _metric(metrics, 'hotline_sip_malformed_total{kind="sip"}') >= 2
    assert _metric(metrics, 'hotline_sip_rejected_total{reason="unknown_number"}') == 1
    assert live.app.state.calls.active() == []


async def test_trunk_allow_lists_and_digest(live: Live) -> None:
    pcmu = SDP.format(pts="0", maps="")
    stranger = await RawSip(live.app.state.sip.port).open("127.0.0.3")
    pbx = await RawSip(live.app.state.sip.port).open("127.0.0.2")
    try:
        stranger.send(stranger.request("INVITE", body=pcmu))
        refused = await stranger.final()
        assert refused.status == 403 and "127.0.0.3 is not an allowed trunk" in refused.reason
        pbx.send(pbx.request("INVITE", body=pcmu, call_id="pbx-1"))
        challenge = await pbx.final()
        assert challenge.status == 401
        uri = f"sip:{KO_NUMBER}@127.0.0.1:{pbx.server[1]}"
        wrong = authorization(challenge.get("www-authenticate") or "", username="pbx",
                              password="nope", method="INVITE", uri=uri)
        pbx.send(pbx.request("INVITE", body=pcmu, cseq=2, extra=f"Authorization: {wrong}\r\n"))
        assert (await pbx.final()).status == 403
        good = authorization(challenge.get("www-authenticate") or "", username="pbx",
                             password="s3cret", method="INVITE", uri=uri)
        pbx.send(pbx.request("INVITE", body=pcmu, call_id="pbx-2",
                             extra=f"Authorization: {good}\r\n"))
        answer = await pbx.final()
        assert answer.status == 200 and b"m=audio" in answer.body
        to_tag = answer.get("to").split("tag=")[1]  # type: ignore[union-attr]
        pbx.send(pbx.request("ACK", call_id="pbx-2", to_tag=to_tag))
        pbx.send(pbx.request("BYE", call_id="pbx-2", cseq=2, to_tag=to_tag))
        assert (await pbx.final()).status == 200
    finally:
        stranger.close()
        pbx.close()
    for call_id in list(live.app.state.calls.active()):
        await live.app.state.calls.wait(call_id, 30)


async def test_an_invite_flood_is_dropped_and_counted(live: Live) -> None:
    flood = await RawSip(live.app.state.sip.port).open("127.0.0.1")
    try:
        for _ in range(60):
            flood.send(flood.request("INVITE", "999", body=SDP.format(pts="0", maps="")))
        answered_calls: set[str] = set()  # (a 404 is retransmitted until its ACK: count calls)
        while True:
            try:
                answered_calls.add((await flood.final(timeout_s=2)).call_id)
            except TimeoutError:
                break
        answered = len(answered_calls)
    finally:
        flood.close()
    async with httpx.AsyncClient(base_url=live.url, headers=ADMIN) as http:
        metrics = (await http.get("/metrics")).text
    limited = _metric(metrics, 'hotline_sip_rejected_total{reason="rate_limited"}')
    assert 10 <= answered < 30 and limited == 60 - answered


async def test_an_invite_without_sdp_gets_our_offer_and_the_ack_answers(live: Live) -> None:
    client = await RawSip(live.app.state.sip.port).open()
    try:
        client.send(client.request("INVITE", call_id="late-1"))
        offer = await client.final()
        assert offer.status == 200
        assert b"m=audio" in offer.body and b"RTP/AVP 0 8 101" in offer.body
        to_tag = offer.get("to").split("tag=")[1]  # type: ignore[union-attr]
        answer = SDP.format(pts="8", maps="")
        ack = client.request("ACK", call_id="late-1", to_tag=to_tag, body=answer)
        client.send(ack)
        sip_call = live.app.state.sip.dialogs["late-1"]
        for _ in range(100):
            if sip_call.call_id is not None:
                break
            await asyncio.sleep(0.05)
        assert sip_call.media.codec == "PCMA"  # what the ACK's answer chose
        client.send(client.request("BYE", call_id="late-1", cseq=2, to_tag=to_tag))
        assert (await client.final()).status == 200
        await live.app.state.calls.wait(sip_call.call_id, 30)
    finally:
        client.close()


async def test_100rel_rings_reliably_until_prack_then_answers(live: Live) -> None:
    client = await RawSip(live.app.state.sip.port).open()
    pcmu = SDP.format(pts="0", maps="")
    try:
        client.send(client.request("INVITE", body=pcmu, call_id="rel-1",
                                   extra="Supported: 100rel, timer\r\n"))
        ringing = None
        while ringing is None:
            message = parse(await asyncio.wait_for(client.proto.inbox.get(), 10))
            if isinstance(message, SipResponse) and message.status == 180:
                ringing = message
        assert ringing.get("require") == "100rel" and ringing.get("rseq") == "1"
        to_tag = ringing.get("to").split("tag=")[1]  # type: ignore[union-attr]
        client.send(client.request("PRACK", call_id="rel-1", cseq=2, to_tag=to_tag,
                                   extra="RAck: 1 1 INVITE\r\n"))
        prack_answer = await client.final()
        assert (prack_answer.cseq[1], prack_answer.status) == ("PRACK", 200)
        answer = await client.final()  # and only now the INVITE's 200 OK
        assert answer.cseq[1] == "INVITE" and answer.status == 200 and b"m=audio" in answer.body
        client.send(client.request("ACK", call_id="rel-1", to_tag=to_tag))
        client.send(client.request("BYE", call_id="rel-1", cseq=3, to_tag=to_tag))
        while (await client.final()).cseq[1] != "BYE":
            pass
    finally:
        client.close()
    for call_id in list(live.app.state.calls.active()):
        await live.app.state.calls.wait(call_id, 30)
