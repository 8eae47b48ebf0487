"""A simulated caller over a real WebRTC connection (``hotline call``, tests, the bench).

``CallerPeer`` is the client side: an aiortc ``RTCPeerConnection`` that sends a WAV (paced in
real time, then silence), a ``dtmf`` data channel for keys, and records what the bot says.
``place_call`` drives one whole call against a server's ``POST /v1/webrtc/offer`` and its live
events WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import av
import httpx
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from app.events import CALL_SAMPLE_RATE_HZ, FRAME_MS
from app.log import get_logger
from app.media.audio import Pcm, resample
from app.media.playout import Pacer, PlayoutBuffer
from app.media.webrtc import DTMF_CHANNEL_LABEL, DTMF_DIGITS, InboundFramer, pcm_frame

EventCallback = Callable[[dict[str, Any]], None]


class CallError(RuntimeError):
    """The call could not be placed; the message says why (e.g. the server's 4xx detail)."""


def parse_dtmf_schedule(text: str) -> list[tuple[str, float]]:
    """``"1@3.0,#@5.2"`` -> ``[("1", 3.0), ("#", 5.2)]`` (sorted by time); strict."""
    schedule: list[tuple[str, float]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        digit, sep, at = item.partition("@")
        if not sep or len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
            raise ValueError(f"bad DTMF item {item!r}: expected KEY@SECONDS, e.g. 1@3.0")
        try:
            at_s = float(at)
        except ValueError as exc:
            raise ValueError(f"bad DTMF time in {item!r}: {at!r} is not a number") from exc
        if at_s < 0:
            raise ValueError(f"bad DTMF time in {item!r}: must be >= 0")
        schedule.append((digit.upper(), at_s))
    return sorted(schedule, key=lambda pair: pair[1])


class WavSourceTrack(MediaStreamTrack):
    """Plays 16 kHz mono PCM in real time (20 ms frames), then silence for ever."""

    kind = "audio"

    def __init__(self, pcm: Pcm) -> None:
        super().__init__()
        data = resample(pcm.data, pcm.sample_rate_hz, CALL_SAMPLE_RATE_HZ)
        self._total_frames = -(-len(data) // (CALL_SAMPLE_RATE_HZ * FRAME_MS // 1000 * 2))
        self.buffer = PlayoutBuffer(CALL_SAMPLE_RATE_HZ)
        self.buffer.enqueue(data)
        self.pacer = Pacer(FRAME_MS)
        self._samples = CALL_SAMPLE_RATE_HZ * FRAME_MS // 1000
        self.started = asyncio.Event()
        self.finished = asyncio.Event()

    @property
    def elapsed_s(self) -> float:
        sent = min(self.buffer.stats.audio_frames_sent, self._total_frames)
        return sent * FRAME_MS / 1000

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self.pacer.tick()
        self.started.set()
        pcm = self.buffer.pop(asyncio.get_running_loop().time())
        if self.buffer.queued_ms == 0:
            self.finished.set()
        return pcm_frame(pcm, CALL_SAMPLE_RATE_HZ, index * self._samples)


class CallerPeer:
    """The caller's side of one WebRTC call (client of ``POST /v1/webrtc/offer``)."""

    def __init__(self, pcm: Pcm, *, codecs: Sequence[str] = ()) -> None:
        """``codecs`` (e.g. ``["audio/PCMU"]``) restricts what the offer lists; default all."""
        self.pc = RTCPeerConnection()
        self.source = WavSourceTrack(pcm)
        transceiver = self.pc.addTransceiver(self.source, direction="sendrecv")
        if codecs:
            capabilities = RTCRtpSender.getCapabilities("audio")
            available = capabilities.codecs if capabilities is not None else []
            wanted = {c.lower() for c in codecs}
            transceiver.setCodecPreferences(
                [c for c in available if c.mimeType.lower() in wanted]
            )
        self.dtmf_channel = self.pc.createDataChannel(DTMF_CHANNEL_LABEL, ordered=True)
        self.framer = InboundFramer(CALL_SAMPLE_RATE_HZ)
        self.received = bytearray()
        self.ended = asyncio.Event()
        self.connected = asyncio.Event()
        self.channel_open = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        self.dtmf_channel.on("open", self.channel_open.set)

    async def create_offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept_answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def send_dtmf(self, digit: str) -> None:
        self.dtmf_channel.send(json.dumps({"digit": digit}))

    @property
    def received_pcm(self) -> Pcm:
        return Pcm(bytes(self.received), CALL_SAMPLE_RATE_HZ)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.append(asyncio.create_task(self._record(track), name="caller-record"))

    async def _record(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self.ended.set()
                return
            if isinstance(frame, av.AudioFrame):
                for chunk in self.framer.push(frame):
                    self.received += chunk.pcm

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self.ended.set()

    async def close(self) -> None:
        self.source.stop()
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class CallResult:
    call_id: str
    setup_s: float  # offer created -> ICE/DTLS connected
    answer_s: float  # offer created -> the server's answer received (HTTP round trip)
    ended_by: str  # "caller" (end of WAV + grace), "server", "timeout"
    bot_audio: Pcm
    events: list[dict[str, Any]] = field(default_factory=list)
    dtmf_sent: list[str] = field(default_factory=list)


async def _follow_events(ws_url: str, events: list[dict[str, Any]],
                         on_event: EventCallback | None, server_done: asyncio.Event) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    log = get_logger(component="caller")
    try:
        async with connect(ws_url, open_timeout=5) as ws:
            async for message in ws:
                event = json.loads(message)
                events.append(event)
                if on_event is not None:
                    on_event(event)
                if event.get("type") == "call_ended":
                    server_done.set()
                    return
    except (OSError, WebSocketException, json.JSONDecodeError) as exc:
        log.warning("caller_events_unavailable", url=ws_url, reason=repr(exc))


async def _send_keys(peer: CallerPeer, schedule: Sequence[tuple[str, float]],
                     sent: list[str]) -> None:
    await peer.channel_open.wait()
    await peer.source.started.wait()
    for digit, at_s in schedule:
        await asyncio.sleep(max(0.0, at_s - peer.source.elapsed_s))
        peer.send_dtmf(digit)
        sent.append(digit)


async def place_call(server_url: str, wav_pcm: Pcm, *, hotline_number: str | None = None,
                     locale: str | None = None, caller_number: str | None = None,
                     dtmf: Sequence[tuple[str, float]] = (), grace_s: float = 3.0,
                     timeout_s: float = 30.0, connect_timeout_s: float = 15.0,
                     on_event: EventCallback | None = None) -> CallResult:
    """Place one call; hang up at end of WAV + ``grace_s``, when the server ends it, or at
    ``timeout_s``. Raises ``CallError`` when the server refuses the offer or ICE fails."""
    base = server_url.rstrip("/")
    peer = CallerPeer(wav_pcm)
    follower: asyncio.Task[None] | None = None
    keys: asyncio.Task[None] | None = None
    try:
        started = time.perf_counter()
        body: dict[str, Any] = {"sdp": await peer.create_offer(), "type": "offer"}
        for key, value in (("hotline_number", hotline_number), ("locale", locale),
                           ("caller_number", caller_number)):
            if value is not None:
                body[key] = value
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{base}/v1/webrtc/offer", json=body)
        answer_s = time.perf_counter() - started
        if response.status_code != 200:
            raise CallError(f"server refused the call ({response.status_code}): "
                            f"{_detail(response)}")
        answer = response.json()
        call_id = str(answer["call_id"])
        events: list[dict[str, Any]] = []
        server_done = asyncio.Event()
        ws_url = "ws" + base.removeprefix("http") + f"/v1/calls/{call_id}/events"
        if answer.get("caller_token"):  # the caller's pass to follow their own call
            ws_url += f"?caller_token={answer['caller_token']}"
        follower = asyncio.create_task(_follow_events(ws_url, events, on_event, server_done))
        await peer.accept_answer(answer["sdp"])
        try:
            await asyncio.wait_for(peer.connected.wait(), connect_timeout_s)
        except TimeoutError as exc:
            raise CallError(f"WebRTC connection not established in {connect_timeout_s} s "
                            f"(state {peer.pc.connectionState})") from exc
        setup_s = time.perf_counter() - started
        sent: list[str] = []
        keys = asyncio.create_task(_send_keys(peer, dtmf, sent))
        ended_by = await _wait_end(peer, server_done, dtmf, grace_s, timeout_s)
        return CallResult(call_id, setup_s, answer_s, ended_by, peer.received_pcm, events, sent)
    finally:
        if keys is not None:  # stop pressing keys at once
            keys.cancel()
            await asyncio.gather(keys, return_exceptions=True)
        await peer.close()
        if follower is not None:
            await _settle([follower], grace_s=2.0)


async def _wait_end(peer: CallerPeer, server_done: asyncio.Event,
                    dtmf: Sequence[tuple[str, float]], grace_s: float, timeout_s: float) -> str:
    last_key_s = max((at for _, at in dtmf), default=0.0)

    async def caller_done() -> str:
        await peer.source.finished.wait()
        await asyncio.sleep(max(0.0, last_key_s - peer.source.elapsed_s) + grace_s)
        return "caller"

    async def server_hung_up() -> str:
        done = asyncio.create_task(server_done.wait())
        ended = asyncio.create_task(peer.ended.wait())
        try:
            await asyncio.wait({done, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (done, ended):
                task.cancel()
            await asyncio.gather(done, ended, return_exceptions=True)
        return "server"

    racers = [asyncio.create_task(caller_done()), asyncio.create_task(server_hung_up())]
    try:
        finished, _ = await asyncio.wait(racers, timeout=timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        return finished.pop().result() if finished else "timeout"
    finally:
        for task in racers:
            task.cancel()
        await asyncio.gather(*racers, return_exceptions=True)


async def _settle(tasks: list[asyncio.Task[None]], grace_s: float) -> None:
    """Let the events follower catch ``call_ended`` briefly, then cancel what is left."""
    if tasks:
        await asyncio.wait(tasks, timeout=grace_s)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        return response.text
