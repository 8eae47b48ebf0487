"""Phones: an offer rung on an agent's SIP phone or mobile, a number dialled for a call.

Both go out through ``app.sip.uac.dial`` on the process's SIP service (off unless
``sip_enabled``): a SIP URI directly, a phone number through a trunk with a proxy. The
hotline number is the caller id. An answered phone is the agent's media leg (8 kHz G.711);
the talk resamples between it and the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.handoff.live import Connected, LiveRouting, Ringing, device_target
from app.log import get_logger
from app.routing.config import Device
from app.sip.uac import DialResult, dial

_OUTCOME = {"busy": "busy", "declined": "declined", "no_answer": "no_answer",
            "cancelled": "cancelled"}


@dataclass(frozen=True)
class DialFailure:
    outcome: str  # busy, declined, no_answer, cancelled, failed
    detail: str

    def __str__(self) -> str:
        return f"{self.outcome}: {self.detail}"


class Phones:
    def __init__(self, sip: Callable[[], Any], *, ring_timeout_s: float = 30.0) -> None:
        """``sip()``: the process's ``SipService``, None while SIP is off."""
        self.sip = sip
        self.ring_timeout_s = ring_timeout_s
        self.log = get_logger(component="phones")

    async def _dial(self, target: str, trunk: str | None, caller_id: str,
                    ring_timeout_s: float, cancel: Any = None) -> DialResult | DialFailure:
        service = self.sip()
        if service is None:
            return DialFailure("failed", "SIP is off (HOTLINE_SIP_ENABLED)")
        return await dial(service, target, trunk=trunk, caller_id=caller_id,
                          ring_timeout_s=ring_timeout_s, cancel=cancel)

    async def ring_device(self, live: LiveRouting, ring: Ringing, device: Device) -> None:
        """Ring one phone of an offered agent; the first answer takes the call."""
        target, trunk = device_target(device)
        ring_s = max(1.0, (ring.offer.expires_at - live.now()).total_seconds())
        result = await self._dial(target, trunk, ring.link.request.hotline_number, ring_s,
                                  ring.cancel)
        if isinstance(result, DialFailure):
            await live.device_failed(ring, device.address, result.outcome, result.detail)
            return
        if result.answered and result.media is not None:
            if not await live.answered(ring, device.address, result.media):
                with contextlib.suppress(Exception):
                    await result.media.close()
            return
        outcome = _OUTCOME.get(result.outcome, "failed")
        if outcome != "cancelled":
            await live.device_failed(ring, device.address, outcome,
                               f"{result.status} {result.reason}".strip())

    async def dial_number(self, call_id: str, number: str, caller_id: str,
                          ring_timeout_s: float | None = None,
                          cancel: asyncio.Event | None = None) -> Connected | DialFailure:
        """Ring ``number`` (an exit to a number, a transfer, a callback); ``cancel`` set
        stops the ringing."""
        result = await self._dial(number, None, caller_id, ring_timeout_s or self.ring_timeout_s,
                                  cancel)
        if isinstance(result, DialFailure):
            return result
        if result.answered and result.media is not None:
            return Connected(f"number:{number}", number, result.media)
        self.log.info("dial_number_failed", call_id=call_id, outcome=result.outcome,
                      status=result.status)
        return DialFailure(_OUTCOME.get(result.outcome, "failed"),
                           f"{result.status} {result.reason}".strip())
