"""WebRTC call media over aiortc: the ``CallMedia`` of a browser (or ``hotline call``) caller.

This module is the leg; what any transport reuses lives beside it: ``sdp_check`` (is this
offer answerable, and if not why), ``framing`` (decoded audio -> the call's 20 ms chunks),
``playout`` (paced, flushable, gap-counting bot audio).

Inbound: the caller's audio track (Opus 48 kHz or PCMU 8 kHz, decoded by aiortc to
``av.AudioFrame``) becomes mono s16 16 kHz 20 ms ``AudioChunk``s (``InboundFramer``). Keypad
presses arrive on a data channel labelled ``dtmf`` as JSON ``{"digit": "1"}``: aiortc (1.16)
has no ``telephone-event`` codec, so it cannot receive RFC 4733 events. Audio and keys share
one ordered queue, so ``inbound()`` yields them in arrival order.

Outbound: ``OutboundAudioTrack`` is a ``PlayoutBuffer`` paced by a ``Pacer``: aiortc's sender
pulls a 20 ms frame each tick, silence when nothing is queued.

The call ends (``inbound()`` returns, ``end_reason`` says why) when the caller's track ends
(RTCP BYE / hang-up), the connection goes ``failed``/``closed``, ICE has not connected within
``ice_timeout_s``, or no caller audio arrived for ``media_timeout_s`` (a peer that vanished).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from app.call.media import EndReason
from app.events import CALL_SAMPLE_RATE_HZ, FRAME_MS, SAMPLE_WIDTH_BYTES, AudioChunk, Dtmf
from app.log import get_logger
from app.media.audio import resample
from app.media.framing import InboundFramer, pcm_frame
from app.media.playout import Pacer, PlayoutBuffer
from app.media.sdp_check import OfferError, answer_codec, check_offer
from app.metrics import AUDIO_GAPS, LATE_FRAMES
from app.settings import Settings

DTMF_CHANNEL_LABEL = "dtmf"
DTMF_DIGITS = frozenset("0123456789*#ABCD")
SUPPORTED_CODECS = ("audio/opus", "audio/PCMU")  # in order of preference
CHUNK_BYTES = CALL_SAMPLE_RATE_HZ * FRAME_MS // 1000 * SAMPLE_WIDTH_BYTES


def ice_servers(settings: Settings) -> list[RTCIceServer]:
    servers = [RTCIceServer(urls=url) for url in settings.webrtc_stun_servers]
    servers += [
        RTCIceServer(
            urls=url,
            username=settings.webrtc_turn_username,
            credential=settings.webrtc_turn_password,
        )
        for url in settings.webrtc_turn_servers
    ]
    return servers


def preferred_codecs() -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpReceiver.getCapabilities("audio")
    codecs = capabilities.codecs if capabilities is not None else []
    return [c for name in SUPPORTED_CODECS for c in codecs if c.mimeType.lower() == name.lower()]


def parse_dtmf_message(message: str | bytes) -> str:
    """``{"digit": "5"}`` -> ``"5"``; anything else raises ``ValueError`` saying why."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    try:
        body = json.loads(message)
    except json.JSONDecodeError as exc:
        raise ValueError(f"DTMF message is not JSON: {exc.msg}") from exc
    if not isinstance(body, dict) or "digit" not in body:
        raise ValueError('DTMF message must be an object {"digit": "<key>"}')
    digit = body["digit"]
    if not isinstance(digit, str) or digit.upper() not in DTMF_DIGITS or len(digit) != 1:
        raise ValueError(f"DTMF digit must be one of 0-9 * # A-D, got {digit!r}")
    return digit.upper()


class OutboundAudioTrack(MediaStreamTrack):
    """Bot audio for aiortc: a ``PlayoutBuffer`` paced by a ``Pacer``, silence when empty."""

    kind = "audio"

    def __init__(self, sample_rate_hz: int = CALL_SAMPLE_RATE_HZ) -> None:
        super().__init__()
        self.sample_rate_hz = sample_rate_hz
        self.buffer = PlayoutBuffer(sample_rate_hz, on_gap=AUDIO_GAPS.inc)
        self.pacer = Pacer(FRAME_MS, on_late=LATE_FRAMES.inc)
        self._samples = sample_rate_hz * FRAME_MS // 1000

    @property
    def queued_ms(self) -> int:
        return self.buffer.queued_ms

    @property
    def gaps(self) -> int:
        return self.buffer.stats.gaps

    @property
    def audio_started_at(self) -> float | None:
        return self.buffer.audio_started_at

    def enqueue(self, pcm: bytes) -> None:
        self.buffer.enqueue(pcm)

    def flush(self) -> int:
        return self.buffer.flush()

    async def wait_below(self, max_queued_ms: int) -> None:
        await self.buffer.wait_below(max_queued_ms)

    def stop(self) -> None:
        super().stop()
        self.buffer.close()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self.pacer.tick()
        pcm = self.buffer.pop(asyncio.get_running_loop().time())
        return pcm_frame(pcm, self.sample_rate_hz, index * self._samples)


_END = object()


class WebRtcCallMedia:
    """``CallMedia`` over one server-side ``RTCPeerConnection`` (see the module docstring)."""

    sample_rate_hz: int = CALL_SAMPLE_RATE_HZ
    open_connections: ClassVar[int] = 0  # created and not yet closed, in this process

    def __init__(self, pc: RTCPeerConnection, *, ice_timeout_s: float = 15.0,
                 media_timeout_s: float = 10.0, max_queued_ms: int = 300,
                 inbound_max_chunks: int = 500) -> None:
        self.pc = pc
        self.ice_timeout_s = ice_timeout_s
        self.media_timeout_s = media_timeout_s
        self.max_queued_ms = max_queued_ms
        self.outbound_track = OutboundAudioTrack(self.sample_rate_hz)
        self.end_reason: EndReason | None = None
        self.codec: str | None = None  # negotiated, e.g. "opus/48000"
        self.received_chunks = 0
        self.dropped_inbound_chunks = 0
        self.bad_dtmf_messages = 0
        self.log = get_logger(component="webrtc")
        self._inbound: asyncio.Queue[AudioChunk | Dtmf | object] = asyncio.Queue()
        self._inbound_max = inbound_max_chunks
        self._framer = InboundFramer(self.sample_rate_hz)
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()
        self._created_at = self._loop.time()
        self._last_rx: float | None = None
        self._closed = False
        WebRtcCallMedia.open_connections += 1
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_connection_state)

    # -- construction from an offer

    @classmethod
    async def accept_offer(cls, settings: Settings, offer_sdp: str) -> tuple[WebRtcCallMedia, str]:
        """Check ``offer_sdp``, answer it (all host candidates gathered) and start watching.

        Raises ``OfferError`` (with an HTTP status) on an offer we cannot take; nothing is
        left open then.
        """
        check_offer(offer_sdp)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(settings)))
        media = cls(pc, ice_timeout_s=settings.webrtc_ice_timeout_s,
                    media_timeout_s=settings.webrtc_media_timeout_s)
        try:
            transceiver = pc.addTransceiver(media.outbound_track, direction="sendrecv")
            transceiver.setCodecPreferences(preferred_codecs())
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, OperationError, InternalError, InvalidStateError) as exc:
            await media.close()
            status = 415 if isinstance(exc, OperationError) else 400
            raise OfferError(status, f"cannot answer the SDP offer: {exc}") from exc
        except (LookupError, AttributeError, TypeError, AssertionError) as exc:
            # aiortc choked on something check_offer let through: still the offer's fault,
            # but a gap in check_offer worth a warning
            media.log.warning("webrtc_offer_unchecked_fault", error=repr(exc))
            await media.close()
            raise OfferError(400, f"cannot answer the SDP offer ({type(exc).__name__})") from exc
        except BaseException:
            await media.close()
            raise
        media.codec = answer_codec(pc.localDescription.sdp)
        media.start()
        return media, pc.localDescription.sdp

    def start(self) -> None:
        """Start the ICE/media watchdog (``accept_offer`` does this)."""
        self._tasks.append(asyncio.create_task(self._watchdog(), name="webrtc-watchdog"))

    # -- CallMedia

    async def inbound(self) -> AsyncIterator[AudioChunk | Dtmf]:
        while True:
            item = await self._inbound.get()
            if item is _END:
                self._inbound.put_nowait(_END)  # a second reader also ends
                return
            assert isinstance(item, AudioChunk | Dtmf)
            yield item

    async def play(self, chunk: AudioChunk) -> None:
        if self._closed:
            return
        pcm = chunk.pcm
        if chunk.sample_rate_hz != self.sample_rate_hz:
            pcm = resample(pcm, chunk.sample_rate_hz, self.sample_rate_hz)
        self.outbound_track.enqueue(pcm)
        await self.outbound_track.wait_below(self.max_queued_ms)

    def flush(self) -> int:
        return self.outbound_track.flush()

    def media_info(self) -> dict[str, Any]:
        stats = self.outbound_track.buffer.stats
        return {
            "transport": "webrtc", "codec": self.codec, "received_chunks": self.received_chunks,
            "dropped_inbound_chunks": self.dropped_inbound_chunks,
            "bad_dtmf_messages": self.bad_dtmf_messages, "outbound_gaps": stats.gaps,
            "late_frames": self.outbound_track.pacer.late_frames,
        }

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        WebRtcCallMedia.open_connections -= 1
        self._finish("local_close")
        self.outbound_track.stop()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.pc.close()

    # -- internals

    @property
    def connected(self) -> bool:
        return self.pc.connectionState == "connected"

    def _finish(self, reason: EndReason) -> None:
        if self.end_reason is not None:
            return
        self.end_reason = reason
        self.log.info("webrtc_call_ended", reason=reason)
        self._inbound.put_nowait(_END)

    def _put(self, item: AudioChunk | Dtmf) -> None:
        if self.end_reason is not None:
            return
        if isinstance(item, AudioChunk):
            self.received_chunks += 1
            if self._inbound.qsize() >= self._inbound_max:
                self.dropped_inbound_chunks += 1
                return
        self._inbound.put_nowait(item)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or self._closed:
            return
        self._tasks.append(asyncio.create_task(self._read_audio(track), name="webrtc-inbound"))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self._finish("caller_hangup")
                return
            self._last_rx = self._loop.time()
            if isinstance(frame, av.AudioFrame):
                for chunk in self._framer.push(frame):
                    self._put(chunk)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != DTMF_CHANNEL_LABEL:
            self.log.warning("webrtc_unknown_datachannel", label=channel.label)
            return
        channel.on("message", self._on_dtmf_message)

    def _on_dtmf_message(self, message: Any) -> None:
        try:
            digit = parse_dtmf_message(message)
        except ValueError as exc:
            self.bad_dtmf_messages += 1
            self.log.warning("webrtc_bad_dtmf", reason=str(exc))
            return
        self._put(Dtmf(digit=digit, media_ts_ms=self._framer.media_ts_ms))

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        self.log.info("webrtc_connection_state", state=state)
        if state == "connected" and self._last_rx is None:
            self._last_rx = self._loop.time()
        elif state == "failed":
            self._finish("network_lost" if self._last_rx is not None else "ice_failed")
        elif state == "closed":
            self._finish("caller_hangup")

    async def _watchdog(self) -> None:
        period_s = max(0.05, min(self.ice_timeout_s, self.media_timeout_s) / 4)
        while self.end_reason is None:
            await asyncio.sleep(period_s)
            now = self._loop.time()
            if self._last_rx is None:
                if now - self._created_at > self.ice_timeout_s:
                    self._finish("ice_failed")
            elif now - self._last_rx > self.media_timeout_s:
                self._finish("media_timeout")
