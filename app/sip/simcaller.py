"""A simulated caller over SIP/RTP (``hotline call --sip``, tests, benches).

``place_sip_call`` runs a small user agent on an ephemeral 127.0.0.1 port, dials the hotline
number at ``host:port``, plays a WAV in real time (G.711, paced by the leg), presses keys at
their times (RFC 4733, or SIP INFO with ``dtmf_mode="info"``), records what the bot says, and
hangs up after the WAV and ``grace_s`` (or when the hotline hangs up first).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.events import AudioChunk
from app.media.audio import Pcm, frames, resample
from app.media.rtp_leg import SAMPLE_RATE_HZ, RtpCallMedia
from app.settings import Settings, SipTrunk
from app.sip.service import SipService
from app.sip.uac import DialResult, OutboundCall, dial


@dataclass
class SipCallResult:
    dial: DialResult
    ended_by: str  # "server" (the hotline hung up), "caller", or "" if never answered
    bot_audio: Pcm = field(default_factory=lambda: Pcm(b"", SAMPLE_RATE_HZ))
    media_info: dict[str, Any] = field(default_factory=dict)
    setup_s: float = 0.0  # INVITE sent -> 200 OK received


def user_agent_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        sip_host="127.0.0.1", sip_port=0, log_json=False, rtp_timeout_s=3600,
        sip_trunks=[SipTrunk(name="local", allow=["127.0.0.0/8"])],
    )
    values.update(overrides)
    return Settings(**values)


async def start_user_agent(**overrides: Any) -> SipService:
    """A SIP user agent with no hotline behind it (calls out; answers into ``on_answered``)."""
    service = SipService(user_agent_settings(**overrides), calls=None)
    await service.start()
    return service


async def place_sip_call(host: str, port: int, pcm: Pcm, *, number: str,
                         caller_number: str = "+8613800138000",
                         dtmf: Sequence[tuple[str, float]] = (), dtmf_mode: str = "rfc4733",
                         grace_s: float = 3.0, timeout_s: float = 120.0,
                         ua: SipService | None = None,
                         on_answered: Callable[[RtpCallMedia], Awaitable[None]] | None = None,
                         ) -> SipCallResult:
    """``on_answered(leg)`` runs once the call is up (tests put a lossy relay in the path)."""
    own_ua = ua is None
    agent = ua or await start_user_agent()
    try:
        started = asyncio.get_running_loop().time()
        result = await dial(agent, f"sip:{number}@{host}:{port}", caller_id=caller_number,
                            ring_timeout_s=30)
        setup_s = asyncio.get_running_loop().time() - started
        if not result.answered or result.media is None:
            return SipCallResult(result, "", setup_s=setup_s)
        if on_answered is not None:
            await on_answered(result.media)
        call = await _talk(result, result.media, pcm, dtmf, dtmf_mode, grace_s, timeout_s)
        call.setup_s = setup_s
        return call
    finally:
        if own_ua:
            await agent.aclose()


async def _talk(result: DialResult, leg: RtpCallMedia, pcm: Pcm,
                dtmf: Sequence[tuple[str, float]], dtmf_mode: str, grace_s: float,
                timeout_s: float) -> SipCallResult:
    heard = bytearray()

    async def listen() -> None:
        async for item in leg.inbound():
            if isinstance(item, AudioChunk):
                heard.extend(item.pcm)

    async def speak() -> None:
        data = resample(pcm.data, pcm.sample_rate_hz, SAMPLE_RATE_HZ)
        for chunk in frames(data, SAMPLE_RATE_HZ):
            await leg.play(chunk)
        await asyncio.sleep(leg.buffer.queued_ms / 1000 + grace_s)

    async def keys() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for digit, at_s in dtmf:
            await asyncio.sleep(max(0.0, start + at_s - loop.time()))
            if dtmf_mode == "info":
                assert result.call is not None
                await send_info_dtmf(result.call, digit)
            else:
                await leg.send_dtmf(digit)

    listener = asyncio.create_task(listen(), name="simcaller-listen")
    talker = asyncio.create_task(_both(speak(), keys()), name="simcaller-talk")
    try:
        done, _ = await asyncio.wait({listener, talker}, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (listener, talker):
            task.cancel()
        await asyncio.gather(listener, talker, return_exceptions=True)
    ended_by = "server" if listener in done else "caller"
    info = leg.media_info()
    await leg.close()
    return SipCallResult(result, ended_by, Pcm(bytes(heard), SAMPLE_RATE_HZ), info)


async def _both(*coros: Any) -> None:
    await asyncio.gather(*coros)


async def send_info_dtmf(call: OutboundCall, digit: str) -> None:
    """A key by SIP INFO (application/dtmf-relay) inside the call's dialog."""
    dialog, service = call.dialog, call.service
    if dialog is None:
        raise RuntimeError("the call has no SIP dialog yet")
    request = dialog.request("INFO", body=f"Signal={digit}\r\nDuration=160\r\n".encode(),
                             content_type="application/dtmf-relay")
    with contextlib.suppress(asyncio.CancelledError):
        await service.endpoint.request(request, dialog.peer)
