"""SIP stack choice: parse cost of an INVITE in ``app.sip.message`` vs sippy, and sippy's model.

    python -m bench.sip_stack            # sippy is optional: pip install sippy pycryptodome

Prints CPU µs per INVITE (parse plus the Via/From/To/CSeq reads a UAS makes) for both, measured
in the same run, and what decided the choice: whether sippy has SIP over TCP, and whether its
UDP server runs its own threads beside an event dispatcher of its own (the call core wants one
asyncio loop, no second event-loop thread).
"""

from __future__ import annotations

import importlib.util
import inspect
import pkgutil
import threading
import time
from collections.abc import Callable
from typing import Any

from app.sip.message import parse, parse_name_addr, parse_via

INVITE = (
    b"INVITE sip:4008001234@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Caller\" <sip:+8613800000000@127.0.0.1>;tag=abc\r\n"
    b"To: <sip:4008001234@127.0.0.1>\r\n"
    b"Call-ID: call-1@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:caller@127.0.0.1:5070>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 129\r\n\r\n"
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def ours() -> None:
    message = parse(INVITE)
    parse_via(message.get_all("via")[0])
    parse_name_addr(message.get("from") or "")
    parse_name_addr(message.get("to") or "")
    _ = message.cseq


def _sippy() -> Callable[[], None] | None:
    if importlib.util.find_spec("sippy") is None:
        return None
    from sippy.SipRequest import SipRequest  # type: ignore[import-not-found]

    def run() -> None:
        request = SipRequest(buf=INVITE.decode())
        for name in ("via", "from", "to", "cseq", "call-id"):
            request.getHFBody(name)
        request.getBody()

    return run


def _cost_us(fn: Callable[[], Any], n: int = 5000) -> float:
    fn()
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    sippy = _sippy()
    print(f"app.sip.message (strict, eager checks): {_cost_us(ours):.1f} µs CPU per INVITE")
    if sippy is None:
        print("sippy: not installed here (pip install sippy pycryptodome to compare)")
        return
    print(f"sippy (lazy header parsing):            {_cost_us(sippy):.1f} µs CPU per INVITE")
    import sippy as package  # type: ignore[import-not-found]
    import sippy.Udp_server as udp  # type: ignore[import-not-found]

    threads = [name for name, obj in inspect.getmembers(udp)
               if inspect.isclass(obj) and issubclass(obj, threading.Thread)
               and obj is not threading.Thread]
    has_tcp = any("tcp" in m.name.lower() for m in pkgutil.iter_modules(package.__path__))
    print(f"sippy SIP over TCP: {has_tcp}; its UDP server's own threads: {threads}; "
          "callbacks reach the app through its own event dispatcher (ED2.callFromThread)")


if __name__ == "__main__":
    main()
