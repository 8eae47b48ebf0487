"""A small UDP relay that loses and delays packets one way (tc netem does not work here)."""

from __future__ import annotations

import asyncio
import random
from typing import Any


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_data: Any) -> None:
        self.on_data = on_data

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.on_data(data, addr)


class LossyRelay:
    """Packets from the caller to ``target`` are dropped with ``loss`` and delayed by a uniform
    ``jitter_ms`` range (so they also arrive out of order); the way back is untouched."""

    def __init__(self, target: tuple[str, int], *, loss: float, jitter_ms: tuple[int, int],
                 seed: int = 7) -> None:
        self.target = target
        self.loss = loss
        self.jitter_ms = jitter_ms
        self.random = random.Random(seed)
        self.sent = 0
        self.dropped = 0
        self._caller: tuple[str, int] | None = None
        self._front: asyncio.DatagramTransport | None = None
        self._back: asyncio.DatagramTransport | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_caller), local_addr=("127.0.0.1", 0))
        self._back, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_target), local_addr=("127.0.0.1", 0))
        host, port = self._front.get_extra_info("sockname")[:2]
        return host, port

    def _from_caller(self, data: bytes, addr: tuple[str, int]) -> None:
        self._caller = addr
        if self.random.random() < self.loss:
            self.dropped += 1
            return
        delay_s = self.random.uniform(*self.jitter_ms) / 1000
        handle = asyncio.get_running_loop().call_later(delay_s, self._forward, data)
        self._timers.add(handle)

    def _forward(self, data: bytes) -> None:
        if self._back is not None and not self._back.is_closing():
            self._back.sendto(data, self.target)
            self.sent += 1

    def _from_target(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._front is not None and self._caller is not None:
            self._front.sendto(data, self._caller)

    def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        for side in (self._front, self._back):
            if side is not None:
                side.close()
