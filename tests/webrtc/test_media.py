"""WebRtcCallMedia between two real aiortc peers: audio both ways, flush, keys, endings."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest

from app.events import AudioChunk, Dtmf
from app.media.audio import Pcm
from app.media.webrtc import WebRtcCallMedia
from app.settings import Settings
from app.sim.caller import CallerPeer
from tests.fakes import cut_network
from tests.helpers.tones import dominant_hz, loud_ms, tone
from tests.helpers.wait import wait_until


async def _collect(inbound: AsyncIterator[AudioChunk | Dtmf], n_chunks: int,
                   timeout_s: float = 10) -> tuple[list[AudioChunk], list[str]]:
    chunks: list[AudioChunk] = []
    digits: list[str] = []

    async def run() -> None:
        async for item in inbound:
            if isinstance(item, AudioChunk):
                chunks.append(item)
                if len(chunks) >= n_chunks:
                    return
            else:
                digits.append(item.digit)

    await asyncio.wait_for(run(), timeout_s)
    return chunks, digits


@pytest.mark.parametrize("codec", ["audio/opus", "audio/PCMU"])
async def test_caller_tone_arrives_as_16k_20ms_chunks(connect, codec: str) -> None:
    caller, media = await connect(Pcm(tone(440, 3.0), 16_000), codecs=[codec])
    inbound = media.inbound()
    chunks, _ = await _collect(inbound, 60)
    await inbound.aclose()
    assert {c.sample_rate_hz for c in chunks} == {16_000}
    assert {len(c.pcm) for c in chunks} == {640}
    assert [c.media_ts_ms for c in chunks[:3]] == [0, 20, 40]
    heard = b"".join(c.pcm for c in chunks[20:])  # past the codec's start-up
    assert abs(dominant_hz(heard) - 440) < 15
    assert loud_ms(heard) > 600


async def test_bot_audio_reaches_the_caller(connect) -> None:
    caller, media = await connect(Pcm(b"\x00" * 32_000, 16_000))
    await media.play(AudioChunk(tone(1000, 1.0), 16_000))  # returns with ~300 ms still queued
    await wait_until(lambda: loud_ms(caller.received_pcm.data) >= 800,
                     what="the caller hears 800 ms of the tone")
    received = caller.received_pcm.data
    assert abs(dominant_hz(received) - 1000) < 15
    assert media.outbound_track.audio_started_at is not None


async def test_play_waits_while_300ms_are_queued(connect) -> None:
    caller, media = await connect(Pcm(b"\x00" * 32_000, 16_000))
    await media.play(AudioChunk(tone(500, 2.0), 16_000))
    # play() returned once the backlog fell to ~300 ms: most of the 2 s went out in real time
    assert 0 < media.outbound_track.queued_ms <= 300
    assert loud_ms(caller.received_pcm.data) >= 1200


async def test_flush_drops_queued_audio_at_once(connect) -> None:
    caller, media = await connect(Pcm(b"\x00" * 32_000, 16_000))

    async def speak() -> None:
        for piece in range(150):  # a 3 s prompt fed in 20 ms pieces, as the TTS does
            await media.play(AudioChunk(tone(700, 0.02), 16_000, piece * 20))

    speaking = asyncio.create_task(speak())
    await wait_until(lambda: loud_ms(caller.received_pcm.data) >= 200,
                     what="the prompt reaches the caller")
    speaking.cancel()  # the session stops its speak task, then flushes (barge-in)
    await asyncio.gather(speaking, return_exceptions=True)
    dropped_ms = media.flush()
    flushed_at = caller.received_frames
    await wait_until(lambda: caller.received_frames >= flushed_at + 50,
                     what="another second of audio reaches the caller")
    assert dropped_ms > 0
    assert media.outbound_track.queued_ms == 0
    assert loud_ms(caller.received_pcm.data) < 1500  # far less than the 3 s prompt


async def test_keys_arrive_in_order_among_the_audio(connect) -> None:
    caller, media = await connect(Pcm(tone(300, 2.0), 16_000))
    for digit in "12#*9":
        caller.send_dtmf(digit)
    caller.dtmf_channel.send("not json")  # ignored and counted, the call goes on
    caller.dtmf_channel.send(json.dumps({"digit": "X"}))
    caller.send_dtmf("0")
    inbound = media.inbound()
    _, digits = await _collect(inbound, 50)
    await inbound.aclose()
    assert digits == ["1", "2", "#", "*", "9", "0"]
    assert media.bad_dtmf_messages == 2


async def test_caller_hangup_ends_inbound(connect) -> None:
    caller, media = await connect(Pcm(tone(300, 1.0), 16_000))
    await caller.close()
    await asyncio.wait_for(_drain(media), 10)
    assert media.end_reason == "caller_hangup"


async def test_vanished_peer_ends_inbound_by_media_timeout(connect) -> None:
    caller, media = await connect(Pcm(tone(300, 1.0), 16_000), webrtc_media_timeout_s=1.0)
    cut_network(caller.pc)
    await asyncio.wait_for(_drain(media), 10)
    assert media.end_reason in ("media_timeout", "network_lost")


async def test_ice_that_never_connects_ends_by_timeout(settings: Settings) -> None:
    # the caller's candidates point at a UDP socket that swallows every packet
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    caller = CallerPeer(Pcm(b"\x00" * 3200, 16_000))
    try:
        offer = await caller.create_offer()
        lines = [ln for ln in offer.splitlines() if not ln.startswith("a=candidate:")]
        at = next(i for i, ln in enumerate(lines) if ln.startswith("a=ice-ufrag")) + 1
        lines.insert(at, f"a=candidate:1 1 udp 2130706431 127.0.0.1 {sink.getsockname()[1]} "
                         "typ host")
        short = settings.model_copy(update={"webrtc_ice_timeout_s": 1.0})
        media, answer = await WebRtcCallMedia.accept_offer(short, "\r\n".join(lines) + "\r\n")
        try:
            assert "a=candidate:" in answer  # host candidates gathered before answering
            await asyncio.wait_for(_drain(media), 10)
            assert media.end_reason == "ice_failed"
        finally:
            await media.close()
    finally:
        await caller.close()
        sink.close()


async def test_close_is_idempotent_and_play_after_close_returns(connect) -> None:
    caller, media = await connect(Pcm(b"\x00" * 3200, 16_000))
    await media.close()
    await media.close()
    await media.play(AudioChunk(tone(400, 1.0), 16_000))
    assert media.flush() == 0
    assert [item async for item in media.inbound()] == []
    await asyncio.wait_for(caller.ended.wait(), 10)  # the caller sees our hang-up


async def _drain(media: WebRtcCallMedia) -> None:
    async for _ in media.inbound():
        pass


async def test_the_answer_offers_only_opus_and_pcmu(settings: Settings) -> None:
    caller = CallerPeer(Pcm(b"\x00" * 3200, 16_000))
    try:
        offer = await caller.create_offer()
        assert "G722/8000" in offer and "PCMA/8000" in offer  # the caller offers all four
        media, answer = await WebRtcCallMedia.accept_offer(settings, offer)
        try:
            await caller.accept_answer(answer)
            await asyncio.wait_for(caller.connected.wait(), 10)
        finally:
            await media.close()
    finally:
        await caller.close()
    codecs = [ln.split(" ", 1)[1].split("/")[0] for ln in answer.splitlines()
              if ln.startswith("a=rtpmap:")]
    assert codecs == ["opus", "PCMU"]
