"""SIP over UDP and TCP on one host:port (asyncio endpoints on the call core's loop).

Whole messages go up to ``on_message(message, peer)``; bytes that do not parse go to
``on_malformed(data, peer, reason)`` (the UAS answers 400 where it can, else drops and counts).
TCP is framed by Content-Length (RFC 3261 §18.3); a stream that cannot be framed is closed.
Double-CRLF keepalives (RFC 5626) are answered with a CRLF on TCP and ignored on UDP.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from app.log import get_logger
from app.sip.message import MAX_MESSAGE_BYTES, SipMessage, SipParseError, parse

_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$",
                             re.IGNORECASE | re.MULTILINE)
MAX_TCP_CONNECTIONS = 1024


@dataclass(frozen=True, slots=True)
class Peer:
    transport: str  # "UDP" or "TCP"
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport.lower()}:{self.host}:{self.port}"


MessageHandler = Callable[[SipMessage, Peer], None]
MalformedHandler = Callable[[bytes, Peer, str], None]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.owner.received(data, Peer("UDP", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable etc.
        self.owner.log.debug("sip_udp_error", error=str(exc))


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer("TCP", host, port)
        if len(self.owner.tcp) >= MAX_TCP_CONNECTIONS:
            transport.close()
            return
        self.owner.tcp[(host, port)] = self

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.owner.tcp.get((self.peer.host, self.peer.port)) is self:
            del self.owner.tcp[(self.peer.host, self.peer.port)]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and self.peer is not None:
            while self.buffer.startswith(b"\r\n"):
                if self.buffer.startswith(b"\r\n\r\n"):
                    self.transport.write(b"\r\n")  # keepalive pong
                    del self.buffer[:4]
                else:
                    del self.buffer[:2]
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_MESSAGE_BYTES:
                    self._fail(b"", "headers longer than the message limit")
                return
            match = _CONTENT_LENGTH.search(bytes(self.buffer[:end]))
            if match is None:
                self._fail(bytes(self.buffer[:end + 4]),
                           "Content-Length is required over a stream transport")
                return
            total = end + 4 + int(match.group(1))
            if total > MAX_MESSAGE_BYTES:
                self._fail(bytes(self.buffer[:end + 4]), "message too large")
                return
            if len(self.buffer) < total:
                return
            chunk = bytes(self.buffer[:total])
            del self.buffer[:total]
            self.owner.received(chunk, self.peer, stream=True)

    def _fail(self, data: bytes, reason: str) -> None:
        assert self.peer is not None and self.transport is not None
        self.owner.on_malformed(data, self.peer, reason)
        self.transport.close()
        self.transport = None


class SipTransport:
    def __init__(self, on_message: MessageHandler, on_malformed: MalformedHandler) -> None:
        self.on_message = on_message
        self.on_malformed = on_malformed
        self.log = get_logger(component="sip")
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: dict[tuple[str, int], _TcpConnection] = {}
        self._server: asyncio.Server | None = None
        self._connecting: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(host, port))
        self.udp = udp
        self.host, self.port = udp.get_extra_info("sockname")[:2]
        self._server = await loop.create_server(lambda: _TcpConnection(self), host, self.port)

    def received(self, data: bytes, peer: Peer, stream: bool = False) -> None:
        if not stream and len(data.strip(b"\r\n\x00 ")) == 0:
            return  # UDP keepalive
        try:
            message = parse(data, stream=stream)
        except SipParseError as exc:
            self.on_malformed(data, peer, str(exc))
            return
        self.on_message(message, peer)

    def send(self, message: SipMessage | bytes, peer: Peer) -> None:
        data = message if isinstance(message, bytes) else message.serialize()
        if peer.transport == "UDP":
            if self.udp is not None:
                self.udp.sendto(data, (peer.host, peer.port))
            return
        connection = self.tcp.get((peer.host, peer.port))
        if connection is not None and connection.transport is not None:
            connection.transport.write(data)
            return
        key = (peer.host, peer.port)
        if key not in self._connecting:
            task = asyncio.create_task(self._connect_and_send(peer, data), name="sip-tcp-connect")
            self._connecting[key] = task
            task.add_done_callback(lambda _t: self._connecting.pop(key, None))

    async def _connect_and_send(self, peer: Peer, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(5):
                _, protocol = await loop.create_connection(
                    lambda: _TcpConnection(self), peer.host, peer.port)
        except (OSError, TimeoutError) as exc:
            self.log.warning("sip_tcp_connect_failed", peer=str(peer), error=str(exc))
            return
        if protocol.transport is not None:
            protocol.transport.write(data)

    async def aclose(self) -> None:
        for task in list(self._connecting.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            self._server.close()
        for connection in list(self.tcp.values()):
            if connection.transport is not None:
                connection.transport.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
        if self.udp is not None:
            self.udp.close()
