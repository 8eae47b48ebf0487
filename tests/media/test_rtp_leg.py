"""Two real ``RtpCallMedia`` legs on 127.0.0.1: audio, hold, malformed input, SSRC change,
RTCP reports and the inactivity timeout."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from app.events import AudioChunk, Dtmf
from app.media.audio import frames
from app.media.rtp import rtp_header
from app.media.rtp_leg import RtpCallMedia
from tests.helpers.tones import dominant_hz, tone


async def _pair(**kwargs: object) -> tuple[RtpCallMedia, RtpCallMedia]:
    a = await RtpCallMedia.open("127.0.0.1", 41000, 42000, **kwargs)  # type: ignore[arg-type]
    b = await RtpCallMedia.open("127.0.0.1", 41000, 42000, **kwargs)  # type: ignore[arg-type]
    for me, other in ((a, b), (b, a)):
        me.configure(codec="PCMA", payload_type=8, dtmf_payload_type=101,
                     remote_host="127.0.0.1", remote_port=other.local_port,
                     remote_direction="sendrecv")
        me.start()
    return a, b


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RtpCallMedia, RtpCallMedia]]:
    a, b = await _pair(rtcp_interval_frames=25)
    yield a, b
    await a.close()
    await b.close()


async def _collect(leg: RtpCallMedia, ms: int) -> tuple[bytes, list[str]]:
    audio, keys = bytearray(), []

    async def read() -> None:
        async for item in leg.inbound():
            if isinstance(item, AudioChunk):
                audio.extend(item.pcm)
            elif isinstance(item, Dtmf):
                keys.append(item.digit)
            if len(audio) >= ms * 16:
                return

    await asyncio.wait_for(read(), ms / 1000 * 5 + 5)
    return bytes(audio), keys


async def test_audio_and_keys_cross_and_rtcp_fills_the_record(
        pair: tuple[RtpCallMedia, RtpCallMedia]) -> None:
    a, b = pair

    async def talk() -> None:
        for chunk in frames(tone(700, 1.5, 8000), 8000):
            await a.play(chunk)
        await a.send_dtmf("7")

    talker = asyncio.create_task(talk())
    audio, keys = await _collect(b, 2500)
    await talker
    assert abs(dominant_hz(audio[-8000:], 8000) - 700) < 15 or keys  # the tone, then the key
    more_audio, more_keys = await _collect(b, 400)
    assert (keys + more_keys) == ["7"]
    info = b.media_info()
    assert info["codec"] == "pcma/8000" and info["packets_received"] > 100
    assert info["packets_lost"] == 0 and info["dtmf_rfc4733"] == 1
    assert info["rtcp_received"] >= 1 and "remote_report" in info
    assert info["remote_report"]["packets_lost"] == 0


async def test_malformed_packets_are_counted_and_change_nothing(
        pair: tuple[RtpCallMedia, RtpCallMedia]) -> None:
    a, b = pair
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (b"", b"\x00" * 3, b"\x40" + bytes(20), b"\x9f" + bytes(13),
                     b"\x80\xc8\x00\xff", b"\xa0\x08" + bytes(10) + b"\x00\xff"):
            sock.sendto(junk, ("127.0.0.1", b.local_port))
        sock.sendto(rtp_header(101, 1, 1, 99) + b"\x01", ("127.0.0.1", b.local_port))
    for chunk in frames(tone(500, 0.6, 8000), 8000):
        await a.play(chunk)
    audio, _ = await _collect(b, 500)
    info = b.media_info()
    assert info["malformed_rtp"] >= 4 and info["malformed_rtcp"] >= 1
    assert info["malformed_dtmf"] == 1 and b.end_reason is None
    assert abs(dominant_hz(audio[-3200:], 8000) - 500) < 20 or len(audio) >= 8000


async def test_a_new_ssrc_restarts_the_stream_state(pair: tuple[RtpCallMedia, RtpCallMedia]
                                                    ) -> None:
    a, b = pair
    await _collect(b, 200)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(10):
            sock.sendto(rtp_header(8, 500 + i, 1_000_000 + 160 * i, 0xABCDEF) + bytes(160),
                        ("127.0.0.1", b.local_port))
    await _collect(b, 200)
    assert b.media_info()["ssrc_changes"] >= 1


async def test_hold_stops_sending_and_the_timeout_ends_a_dead_call() -> None:
    a, b = await _pair(timeout_s=0.6)
    ended: list[str] = []
    b.on_local_close = lambda: ended.append("bye")
    try:
        b.configure(codec="PCMA", payload_type=8, dtmf_payload_type=101,
                    remote_host="127.0.0.1", remote_port=a.local_port,
                    remote_direction="sendonly")  # the far end put us on hold
        assert b.on_hold and not b.sending
        await a.close()  # the far end vanishes
        await asyncio.sleep(1.5)  # on hold: silence is expected, no timeout
        assert b.end_reason is None
        b.configure(codec="PCMA", payload_type=8, dtmf_payload_type=101,
                    remote_host="127.0.0.1", remote_port=a.local_port,
                    remote_direction="sendrecv")  # off hold, and still nothing comes
        async for _ in b.inbound():
            pass
        assert b.end_reason == "media_timeout" and ended == ["bye"]
    finally:
        await b.close()
