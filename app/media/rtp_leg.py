"""``RtpCallMedia``: one SIP call's G.711 RTP/RTCP media, the ``CallMedia`` of the SIP transport.

Runs at the leg's own rate (8 kHz: no resampling on the hot path). The process's one
``MediaClock`` task calls every leg each 20 ms: the leg sends the next outbound frame from
the ``PlayoutBuffer`` (silence when the bot is quiet, so NATs stay open and the far end's
jitter buffer stays fed) and hands the next frame from the adaptive ``JitterBuffer`` to
``inbound()``. Datagrams are handled in the protocol callback: RTP is decoded into the jitter
buffer, RFC 4733 events become one ``Dtmf`` each, RTCP reports are kept for the call record.

- Symmetric RTP (NAT): audio goes to where the caller's packets come from, once they come.
- SSRC change: the jitter buffer, loss statistics and DTMF state restart; counted.
- Hold (re-INVITE sendonly/inactive) stops our sending and the inactivity timer.
- No RTP for ``timeout_s`` while not on hold ends the leg with ``media_timeout``.
- Malformed RTP/RTCP/telephone-event is dropped and counted (media_info and /metrics).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from app.call.media import EndReason
from app.events import FRAME_MS, AudioChunk, Dtmf
from app.log import get_logger
from app.media.clock import MediaClock
from app.media.dtmf import DtmfReceiver, dtmf_packets
from app.media.g711 import G711
from app.media.jitter import FRAME_BYTES, JitterBuffer
from app.media.playout import PlayoutBuffer
from app.media.rtp import (
    RTP_HEADER,
    Bye,
    ReceiverReport,
    ReceptionStats,
    ReportBlock,
    RtpPacket,
    SenderReport,
    SourceDescription,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from app.metrics import (
    AUDIO_GAPS,
    RTP_CONCEALED_FRAMES,
    RTP_LATE_PACKETS,
    SIP_MALFORMED,
)

SAMPLE_RATE_HZ = 8000
FRAME_SAMPLES = SAMPLE_RATE_HZ * FRAME_MS // 1000
RTCP_INTERVAL_FRAMES = 250  # 5 s
NTP_EPOCH_OFFSET_S = 2_208_988_800
_END = object()


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, handler: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.handler(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable while the far end is not up yet


async def bind_pair(host: str, port_min: int, port_max: int, on_rtp: Callable[..., None],
                    on_rtcp: Callable[..., None]
                    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramTransport]:
    """Bind an even RTP port and the next one for RTCP, somewhere in [port_min, port_max]."""
    loop = asyncio.get_running_loop()
    evens = list(range(port_min + port_min % 2, port_max, 2))
    for port in random.sample(evens, min(len(evens), 64)):
        try:
            rtp, _ = await loop.create_datagram_endpoint(lambda: _Socket(on_rtp),
                                                         local_addr=(host, port))
        except OSError:
            continue
        try:
            rtcp, _ = await loop.create_datagram_endpoint(lambda: _Socket(on_rtcp),
                                                          local_addr=(host, port + 1))
        except OSError:
            rtp.close()
            continue
        return rtp, rtcp
    raise OSError(f"no free RTP port pair on {host} in {port_min}-{port_max}")


class RtpCallMedia:
    sample_rate_hz: int = SAMPLE_RATE_HZ

    def __init__(self, rtp: asyncio.DatagramTransport | None,
                 rtcp: asyncio.DatagramTransport | None, *, trunk: str = "",
                 timeout_s: float = 30.0, jitter_min_ms: int = 40, jitter_max_ms: int = 300,
                 max_queued_ms: int = 300, inbound_max_chunks: int = 500,
                 rtcp_interval_frames: int = RTCP_INTERVAL_FRAMES) -> None:
        self.rtp, self.rtcp = rtp, rtcp
        self.local_port = rtp.get_extra_info("sockname")[1] if rtp is not None else 0
        self.trunk = trunk
        self.timeout_s = timeout_s
        self.max_queued_ms = max_queued_ms
        self.rtcp_interval_frames = rtcp_interval_frames
        self.end_reason: EndReason | None = None
        self.on_local_close: Callable[[], None] | None = None  # signalling hangs up (BYE)
        self.codec = "PCMU"
        self.payload_type = 0
        self.dtmf_payload_type: int | None = None
        self.remote: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self.on_hold = False
        self.sending = True
        self.buffer = PlayoutBuffer(SAMPLE_RATE_HZ, on_gap=AUDIO_GAPS.inc)
        self.late_frames = 0
        self.jitter = JitterBuffer(min_delay_ms=jitter_min_ms, max_delay_ms=jitter_max_ms)
        self.stats = ReceptionStats(SAMPLE_RATE_HZ)
        self.dtmf = DtmfReceiver()
        self.counts: dict[str, int] = {
            "packets_sent": 0, "packets_received": 0, "malformed_rtp": 0, "malformed_rtcp": 0,
            "malformed_dtmf": 0, "unexpected_payload": 0, "ssrc_changes": 0,
            "dtmf_rfc4733": 0, "dtmf_info": 0, "rtcp_received": 0, "dropped_inbound_chunks": 0,
        }
        self.remote_report: dict[str, float] = {}
        self.log = get_logger(component="rtp")
        self._g711 = G711("PCMU")
        self._silence_pcm = self.buffer.silence
        self._silence_payload = self._g711.encode(self._silence_pcm)
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._remote_ssrc: int | None = None
        self._latched = False
        self._inbound: asyncio.Queue[AudioChunk | Dtmf | object] = asyncio.Queue()
        self._inbound_max = inbound_max_chunks
        self._media_ts_ms = 0
        self._clock: MediaClock | None = None
        self._index = 0
        self._first = True
        self._loop = asyncio.get_running_loop()
        self._last_rx = self._loop.time()
        self._octets_sent = 0
        self._last_sr: tuple[int, float] | None = None  # (middle 32 bits of NTP, arrival)
        self._dtmf_lock = asyncio.Lock()
        self._lost_before = 0  # loss counted under earlier SSRCs
        self._expected_before = 0
        self._closed = False

    # -- set-up (signalling)
    @classmethod
    async def open(cls, host: str, port_min: int, port_max: int, **kwargs: Any) -> RtpCallMedia:
        holder: list[RtpCallMedia] = []  # stray packets before the leg exists are ignored

        def on_rtp(data: bytes, addr: tuple[str, int]) -> None:
            if holder:
                holder[0].on_rtp(data, addr)

        def on_rtcp(data: bytes, addr: tuple[str, int]) -> None:
            if holder:
                holder[0].on_rtcp(data, addr)

        rtp, rtcp = await bind_pair(host, port_min, port_max, on_rtp, on_rtcp)
        media = cls(rtp, rtcp, **kwargs)
        holder.append(media)
        return media

    def configure(self, *, codec: str, payload_type: int, dtmf_payload_type: int | None,
                  remote_host: str, remote_port: int, remote_direction: str) -> None:
        """Apply a negotiated SDP (initial or re-INVITE): codec, where to send, hold state."""
        if codec != self._g711.codec:
            self._g711 = G711(codec)
            self._silence_payload = self._g711.encode(self._silence_pcm)
        self.codec, self.payload_type, self.dtmf_payload_type = codec, payload_type, \
            dtmf_payload_type
        new_remote = (remote_host, remote_port)
        if remote_port and remote_host not in ("0.0.0.0", "::") and new_remote != self.remote:
            self.remote, self._latched = new_remote, False
            self.remote_rtcp = (remote_host, remote_port + 1)
        self.on_hold = remote_direction in ("sendonly", "inactive")
        self.sending = remote_direction in ("sendrecv", "recvonly") and bool(remote_port)
        self._last_rx = self._loop.time()

    def pin_remote(self, host: str, port: int) -> None:
        """Send to ``host:port`` whatever the source of incoming RTP (no latching)."""
        self.remote, self._latched = (host, port), True

    def start(self) -> None:
        if self._clock is None and self.end_reason is None:
            self._clock = MediaClock.for_loop()
            self._clock.add(self)

    def end(self, reason: EndReason) -> None:
        """The call is over for ``reason`` (BYE, CANCEL, session timer...): inbound() ends."""
        if self.end_reason is not None:
            return
        self.end_reason = reason
        self.log.info("rtp_leg_ended", reason=reason, local_port=self.local_port)
        self._inbound.put_nowait(_END)

    # -- CallMedia
    async def inbound(self) -> AsyncIterator[AudioChunk | Dtmf]:
        while True:
            item = await self._inbound.get()
            if item is _END:
                self._inbound.put_nowait(_END)
                return
            assert isinstance(item, AudioChunk | Dtmf)
            yield item

    async def play(self, chunk: AudioChunk) -> None:
        if self._closed:
            return
        pcm = chunk.pcm
        if chunk.sample_rate_hz != SAMPLE_RATE_HZ:
            from app.media.audio import resample

            pcm = resample(pcm, chunk.sample_rate_hz, SAMPLE_RATE_HZ)
        self.buffer.enqueue(pcm)
        await self.buffer.wait_below(self.max_queued_ms)

    def flush(self) -> int:
        return self.buffer.flush()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.end_reason is None:
            self.end("local_close")
            if self.on_local_close is not None:
                self.on_local_close()
        self.buffer.close()
        self._send_rtcp(bye=True)
        RTP_CONCEALED_FRAMES.inc(self.jitter.stats.concealed)
        self._stop_clock()
        for transport in (self.rtp, self.rtcp):
            if transport is not None:
                transport.close()

    def media_info(self) -> dict[str, Any]:
        expected = self._expected_before + self.stats.expected
        lost = self._lost_before + self.stats.lost
        info: dict[str, Any] = {
            "transport": "sip", "trunk": self.trunk, "codec": f"{self.codec.lower()}/8000",
            "remote_address": f"{self.remote[0]}:{self.remote[1]}" if self.remote else None,
            "local_port": self.local_port, **self.counts,
            "packets_expected": expected, "packets_lost": lost,
            "loss_pct": round(100 * lost / expected, 2) if expected else 0.0,
            "jitter_ms": round(self.stats.jitter_ms, 2),
            "concealed_frames": self.jitter.stats.concealed,
            "late_packets": self.jitter.stats.late,
            "jitter_dropped_frames": self.jitter.stats.dropped,
            "outbound_gaps": self.buffer.stats.gaps, "late_frames": self.late_frames,
        }
        if self.remote_report:
            info["remote_report"] = dict(self.remote_report)
        return info

    # -- outbound DTMF (simulated caller, bridged keypad)
    async def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """RFC 4733 packets for one key, paced 20 ms apart, in the media clock."""
        if self.dtmf_payload_type is None or self.remote is None or self.rtp is None:
            raise RuntimeError("the far end did not accept telephone-event")
        async with self._dtmf_lock:
            timestamp = self._ts
            for marker, payload in dtmf_packets(digit, duration_ms=duration_ms):
                self._send(self.dtmf_payload_type, payload, timestamp, marker)
                await asyncio.sleep(FRAME_MS / 1000)

    def info_dtmf(self, digit: str, duration_ms: int) -> None:
        """A key from SIP INFO: the same keypad path as RFC 4733."""
        self.counts["dtmf_info"] += 1
        self._put(Dtmf(digit=digit, media_ts_ms=self._media_ts_ms, duration_ms=duration_ms))

    # -- internals
    def _put(self, item: AudioChunk | Dtmf) -> None:
        if self.end_reason is not None:
            return
        if isinstance(item, AudioChunk) and self._inbound.qsize() >= self._inbound_max:
            self.counts["dropped_inbound_chunks"] += 1
            return
        self._inbound.put_nowait(item)

    def _send(self, payload_type: int, payload: bytes, timestamp: int, marker: bool) -> None:
        assert self.rtp is not None and self.remote is not None
        header = RTP_HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, self._seq,
                                 timestamp & 0xFFFFFFFF, self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        self.rtp.sendto(header + payload, self.remote)
        self.counts["packets_sent"] += 1
        self._octets_sent += len(payload)

    def _stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.remove(self)
            self._clock = None

    def tick(self, now: float, late: bool) -> None:
        """Every 20 ms (``MediaClock``): send the next frame, hand on the next received one."""
        if self.end_reason is not None:
            self._stop_clock()
            return
        index = self._index
        self._index += 1
        if late:
            self.late_frames += 1
        pcm = self.buffer.pop(now)
        if self.sending and self.remote is not None and not self._dtmf_lock.locked():
            payload = (self._silence_payload if pcm is self._silence_pcm  # bot quiet: cached
                       else self._g711.encode(pcm))
            self._send(self.payload_type, payload, self._ts, self._first)
            self._first = False
        self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF
        frame = self.jitter.pop()
        if frame is not None:
            self._put(AudioChunk(frame, SAMPLE_RATE_HZ, self._media_ts_ms))
            self._media_ts_ms += FRAME_MS
        if index % 50 == 0 or index % self.rtcp_interval_frames == 0:
            self._housekeeping(now, index)

    def _housekeeping(self, now: float, index: int) -> None:
        self.jitter.set_jitter(self.stats.jitter_ms)
        if not self.on_hold and now - self._last_rx > self.timeout_s:
            self.log.warning("rtp_timeout", local_port=self.local_port, silent_s=self.timeout_s)
            self.end("media_timeout")
            if self.on_local_close is not None:
                self.on_local_close()
        if index % self.rtcp_interval_frames == 0 and index:
            self._send_rtcp()

    def on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.end_reason is not None:
            return
        if is_rtcp(data):  # RFC 5761 mux
            self.on_rtcp(data, addr)
            return
        try:
            if len(data) >= 12 and data[0] == 0x80:  # fast path: no padding/extension/CSRC
                second, seq, timestamp, ssrc = struct.unpack_from("!BHII", data, 1)
                pt, payload = second & 0x7F, data[12:]
            else:
                packet = RtpPacket.parse(data)
                pt, seq, timestamp, ssrc = (packet.payload_type, packet.sequence,
                                            packet.timestamp, packet.ssrc)
                payload = packet.payload
        except (ValueError, struct.error) as exc:
            self._malformed("rtp", str(exc))
            return
        if pt == self.payload_type:
            self._source(ssrc, addr)
            self.stats.update(seq, timestamp, self._loop.time())
            self.counts["packets_received"] += 1
            before_late = self.jitter.stats.late
            self.jitter.push(timestamp, self._g711.decode(payload[:FRAME_BYTES * 2]))
            if self.jitter.stats.late != before_late:
                RTP_LATE_PACKETS.inc()
        elif pt == self.dtmf_payload_type and pt is not None:
            self._source(ssrc, addr)
            self.stats.update(seq, timestamp, self._loop.time(), timing=False)
            try:
                digit = self.dtmf.push(timestamp, payload, self._loop.time())
            except ValueError as exc:
                self._malformed("dtmf", str(exc))
                return
            if digit is not None:
                self.counts["dtmf_rfc4733"] += 1
                self._put(Dtmf(digit=digit, media_ts_ms=self._media_ts_ms))
        elif pt != 13:  # 13: comfort noise, ignored
            self.counts["unexpected_payload"] += 1

    def _source(self, ssrc: int, addr: tuple[str, int]) -> None:
        self._last_rx = self._loop.time()
        if not self._latched:  # symmetric RTP: answer where the packets come from
            self._latched = True
            if addr != self.remote:
                self.log.info("rtp_latched", local_port=self.local_port,
                              remote=f"{addr[0]}:{addr[1]}")
            self.remote = addr
        if ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:
                self.counts["ssrc_changes"] += 1
                self.jitter.reset()
                self.dtmf.reset()
                self._lost_before += self.stats.lost
                self._expected_before += self.stats.expected
                self.stats.reset()
            self._remote_ssrc = ssrc

    def on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packets = parse_rtcp(data)
        except ValueError as exc:
            self._malformed("rtcp", str(exc))
            return
        self.counts["rtcp_received"] += 1
        self.remote_rtcp = addr
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._last_sr = ((packet.ntp_timestamp >> 16) & 0xFFFFFFFF, self._loop.time())
            if isinstance(packet, SenderReport | ReceiverReport):
                for block in packet.reports:
                    if block.ssrc == self._ssrc:
                        self.remote_report = {
                            "fraction_lost_pct": round(100 * block.fraction_lost / 256, 2),
                            "packets_lost": block.packets_lost,
                            "jitter_ms": round(1000 * block.jitter / SAMPLE_RATE_HZ, 2),
                        }

    def _send_rtcp(self, bye: bool = False) -> None:
        if self.rtcp is None or self.remote_rtcp is None or self.rtcp.is_closing():
            return
        blocks: tuple[ReportBlock, ...] = ()
        if self._remote_ssrc is not None and self.stats.received:
            lsr, dlsr = 0, 0
            if self._last_sr is not None:
                lsr = self._last_sr[0]
                dlsr = int((self._loop.time() - self._last_sr[1]) * 65536)
            blocks = (self.stats.report_block(self._remote_ssrc, lsr, dlsr),)
        ntp_s = time.time() + NTP_EPOCH_OFFSET_S
        ntp = (int(ntp_s) << 32) | int((ntp_s % 1) * (1 << 32))
        report = SenderReport(self._ssrc, ntp & 0xFFFFFFFFFFFFFFFF, self._ts,
                              self.counts["packets_sent"] & 0xFFFFFFFF,
                              self._octets_sent & 0xFFFFFFFF, blocks)
        data = serialize_rtcp(report) + serialize_rtcp(
            SourceDescription(((self._ssrc, f"hotline@{self.local_port}"),)))
        if bye:
            data += serialize_rtcp(Bye((self._ssrc,)))
        self.rtcp.sendto(data, self.remote_rtcp)

    def _malformed(self, kind: str, reason: str) -> None:
        self.counts[f"malformed_{kind}"] += 1
        SIP_MALFORMED.labels(kind).inc()
        if self.counts[f"malformed_{kind}"] <= 3:
            self.log.warning("rtp_malformed", kind=kind, reason=reason, local_port=self.local_port)
