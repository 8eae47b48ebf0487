"""PROTOS c07-sip (Oulu University): fill a case's placeholders and fire it at a SIP server.

Each case file holds two length-prefixed templates, ``<len> <bytes>``: the test INVITE and its
teardown. After every batch the runner sends an OPTIONS and waits for its 200: the server is
alive and still answering.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

MAX_UDP = 65_507
_SPLIT = re.compile(rb"^(\d+) ")


def read_case(path: Path) -> list[bytes]:
    """The templates in a case file (the INVITE, then the teardown)."""
    data, parts = path.read_bytes(), []
    while data:
        match = _SPLIT.match(data)
        if match is None:
            raise ValueError(f"{path}: expected '<length> ' at byte {len(data)} from the end")
        size = int(match.group(1))
        start = match.end()
        parts.append(data[start:start + size])
        data = data[start + size:].lstrip(b"\r\n")
    return parts


def fill(template: bytes, *, to: str, local_port: int, call_id: str, cseq: int,
         branch: str, teardown: str = "CANCEL") -> bytes:
    values = {
        b"<To>": to.encode(), b"<From>": f"protos@127.0.0.1:{local_port}".encode(),
        b"<From-Address>": b"127.0.0.1", b"<From-IP>": b"127.0.0.1",
        b"<Local-Port>": str(local_port).encode(), b"<Call-ID>": call_id.encode(),
        b"<CSeq>": str(cseq).encode(), b"<Branch-ID>": branch.encode(),
        b"<Teardown-Method>": teardown.encode(),
    }
    for key, value in values.items():
        template = template.replace(key, value)
    head, sep, body = template.partition(b"\r\n\r\n")
    template = template.replace(b"<Content-Length>", str(len(body)).encode())
    return template[:MAX_UDP]


class _Socket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()
        self.received = 0
        self.statuses: dict[str, int] = {}

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.received += 1
        if data.startswith(b"SIP/2.0 "):
            code = data[8:11].decode("ascii", "replace")
            self.statuses[code[0] + "xx"] = self.statuses.get(code[0] + "xx", 0) + 1
            if b"CSeq: 1 OPTIONS" in data and code == "200":
                self.answers.put_nowait(data)


@dataclass
class ProtosRun:
    alive_before: bool = False
    cases: int = 0
    batches_ok: int = 0
    batches: int = 0
    first_silent_case: str | None = None
    responses: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0


async def run_protos(cases: list[Path], port: int, *, number: str, batch: int = 100,
                     pace_s: float = 0.002, alive_timeout_s: float = 10.0) -> ProtosRun:
    loop = asyncio.get_running_loop()
    proto = _Socket()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto,
                                                       local_addr=("127.0.0.1", 0))
    local_port = transport.get_extra_info("sockname")[1]
    run = ProtosRun()
    started = time.monotonic()
    to = f"{number}@127.0.0.1:{port}"
    try:
        run.alive_before = await _alive(transport, proto, port, local_port, alive_timeout_s)
        for index, path in enumerate(cases, start=1):
            call_id = f"protos-{path.name}-{secrets.token_hex(3)}"
            for n, template in enumerate(read_case(path)):
                transport.sendto(fill(template, to=to, local_port=local_port, call_id=call_id,
                                      cseq=1, branch=f"{path.name}{n}"), ("127.0.0.1", port))
            run.cases += 1
            await asyncio.sleep(pace_s)
            if index % batch == 0 or index == len(cases):
                run.batches += 1
                if await _alive(transport, proto, port, local_port, alive_timeout_s):
                    run.batches_ok += 1
                elif run.first_silent_case is None:
                    run.first_silent_case = path.name
    finally:
        transport.close()
    run.responses = dict(proto.statuses)
    run.elapsed_s = time.monotonic() - started
    return run


async def _alive(transport: asyncio.DatagramTransport, proto: _Socket, port: int,
                 local_port: int, timeout_s: float) -> bool:
    while not proto.answers.empty():
        proto.answers.get_nowait()
    branch = "z9hG4bK" + secrets.token_hex(6)
    options = (f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch}\r\n"
               f"From: <sip:protos@127.0.0.1>;tag=p\r\nTo: <sip:ping@127.0.0.1>\r\n"
               f"Call-ID: ping-{branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
               "Content-Length: 0\r\n\r\n").encode()
    deadline = asyncio.get_running_loop().time() + timeout_s
    interval_s = 0.5
    while asyncio.get_running_loop().time() < deadline:  # UDP: retransmit (Timer E)
        transport.sendto(options, ("127.0.0.1", port))
        try:
            await asyncio.wait_for(proto.answers.get(), interval_s)
            return True
        except TimeoutError:
            interval_s = min(2 * interval_s, 4.0)
    return False
