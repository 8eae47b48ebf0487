"""A simulated caller over a real WebRTC connection (``hotline call``, tests, the bench).

``CallerPeer`` is the client side: an aiortc ``RTCPeerConnection`` that sends a WAV (paced in
real time, then silence), a ``dtmf`` data channel for keys, and records what the bot says.
``place_call`` drives one whole call against a server's ``POST /v1/webrtc/offer`` and its live
events WebSocket: keys go out at given seconds of the caller's audio or when the bot listens
(``KeyPress``), and the caller hangs up once it has said and pressed everything and the bot
waits for it (``grace_s``), when the server ends the call, or at ``timeout_s``.
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
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from app.events import CALL_SAMPLE_RATE_HZ, FRAME_MS
from app.log import get_logger
from app.media.audio import Pcm, resample
from app.media.framing import InboundFramer, pcm_frame
from app.media.playout import Pacer, PlayoutBuffer
from app.media.webrtc import DTMF_CHANNEL_LABEL, DTMF_DIGITS
from app.sim.offer import OfferRefused, post_offer

EventCallback = Callable[[dict[str, Any]], None]
NoteCallback = Callable[[str], None]
CODECS = {"opus": "audio/opus", "pcmu": "audio/PCMU"}  # --codec NAME -> what the offer lists
AT_MENU = "menu"


class CallError(RuntimeError):
    """The call could not be placed; the message says why (e.g. the server's 4xx detail)."""


@dataclass(frozen=True, slots=True)
class KeyPress:
    """Keys to press together: at ``at_s`` seconds into the caller's audio, or (``None``) as
    soon as the bot next listens for input (its next ``listen`` event)."""

    keys: str
    at_s: float | None = None

    def __str__(self) -> str:
        return f"{self.keys}@{AT_MENU if self.at_s is None else format(self.at_s, 'g')}"


def parse_dtmf_schedule(text: str) -> list[KeyPress]:
    """``"1@menu,4567#@menu,*@12.5"`` -> ``KeyPress``es in the order written; strict.

    ``KEYS@SECONDS`` presses at that second of the caller's audio; ``KEYS@menu`` when the bot
    next listens (each ``@menu`` item waits for a later ``listen`` than the item before).
    """
    schedule: list[KeyPress] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        keys, sep, at = item.partition("@")
        if not sep or not keys or any(k not in DTMF_DIGITS for k in keys.upper()):
            raise ValueError(f"bad DTMF item {item!r}: expected KEYS@SECONDS or KEYS@menu, "
                             "e.g. 1@3.0 or 4567#@menu (keys: 0-9 * # A-D)")
        if at.strip().lower() == AT_MENU:
            schedule.append(KeyPress(keys.upper()))
            continue
        try:
            at_s = float(at)
        except ValueError as exc:
            raise ValueError(f"bad DTMF time in {item!r}: {at!r} is not a number "
                             f"or '{AT_MENU}'") from exc
        if not at_s >= 0 or at_s == float("inf"):
            raise ValueError(f"bad DTMF time in {item!r}: must be >= 0 seconds")
        schedule.append(KeyPress(keys.upper(), at_s))
    return schedule


class WavSourceTrack(MediaStreamTrack):
    """Plays 16 kHz mono PCM in real time (20 ms frames), then silence for ever."""

    kind = "audio"

    def __init__(self, pcm: Pcm) -> None:
        super().__init__()
        data = resample(pcm.data, pcm.sample_rate_hz, CALL_SAMPLE_RATE_HZ)
        self.buffer = PlayoutBuffer(CALL_SAMPLE_RATE_HZ)
        self.buffer.enqueue(data)
        self.pacer = Pacer(FRAME_MS)
        self._samples = CALL_SAMPLE_RATE_HZ * FRAME_MS // 1000
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        if not data:
            self.finished.set()

    @property
    def elapsed_s(self) -> float:
        """Seconds of caller audio (the WAV, then silence) sent so far."""
        return (self.pacer.index + 1) * FRAME_MS / 1000

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

    def __init__(self, pcm: Pcm, *, codecs: Sequence[str] = (), record: bool = True) -> None:
        """``codecs`` (e.g. ``["audio/PCMU"]``) restricts what the offer lists; default all.
        ``record=False`` drops the bot's audio unframed (the bench: less caller CPU)."""
        self.pc = RTCPeerConnection()
        self.source = WavSourceTrack(pcm)
        self.record = record
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
        self.received_frames = 0
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
            self.received_frames += 1
            if self.record and isinstance(frame, av.AudioFrame):
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
    ended_by: str  # "caller" (said and pressed everything, bot waiting), "server", "timeout"
    bot_audio: Pcm
    events: list[dict[str, Any]] = field(default_factory=list)
    dtmf_sent: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the caller noticed (see KeyPress)
    duration_s: float = 0.0  # connected -> hung up


class CallProgress:
    """What the caller knows from the call's live events: the bot's listens and prompts.

    A key the server received while a prompt that does not allow barge-in was playing (its
    ``dtmf`` event falls between that ``prompt_played`` and the next ``listen``) is noted:
    the prompt plays on, and the key is typed ahead for the next menu.
    """

    def __init__(self, note: NoteCallback | None = None) -> None:
        self._note = note
        self.events: list[dict[str, Any]] = []
        self.listens = 0  # ``listen`` events seen
        self.waiting = False  # the bot listens, with nothing of the caller's in hand
        self.prompt: dict[str, Any] | None = None  # the prompt playing, if any
        self.server_done = asyncio.Event()
        self._changed = asyncio.Event()

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        kind = event.get("type")
        if kind == "listen":
            self.listens += 1
            self.waiting, self.prompt = True, None
        elif kind == "prompt_played":
            self.waiting, self.prompt = False, event
        elif kind in ("transfer", "webhook", "hangup", "node_entered", "barge_in"):
            self.waiting, self.prompt = False, None
        elif kind == "transcript":  # the caller is talking, or the bot is on its answer
            self.waiting = False
        elif kind == "dtmf":
            self.waiting = False
            self._check_key(str(event.get("digit")))
        elif kind == "call_ended":
            self.server_done.set()
        self._changed.set()

    def _check_key(self, digit: str) -> None:
        prompt = self.prompt
        if self._note is not None and prompt is not None and prompt.get("barge_in") is False:
            text = str(prompt.get("text") or "(recording)")
            shown = text if len(text) <= 40 else text[:40] + "..."
            self._note(f"key {digit} was pressed during a prompt that does not allow barge-in "
                       f"({shown!r}): it plays on; the key waits for the next menu")

    async def changed(self) -> None:
        """Return at the next event."""
        self._changed.clear()
        await self._changed.wait()

    async def wait_for_listen(self, after: int) -> int:
        """Wait until more than ``after`` listens were seen; returns the count."""
        while self.listens <= after:
            await self.changed()
        return self.listens


async def _follow_events(ws_url: str, progress: CallProgress,
                         on_event: EventCallback | None, token: str | None = None) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    log = get_logger(component="caller")
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with connect(ws_url, open_timeout=5, additional_headers=headers) as ws:
            async for message in ws:
                event = json.loads(message)
                progress.add(event)
                if on_event is not None:
                    on_event(event)
                if event.get("type") == "call_ended":
                    return
    except (OSError, WebSocketException, json.JSONDecodeError) as exc:
        log.warning("caller_events_unavailable", url=ws_url, reason=repr(exc))


async def _send_keys(peer: CallerPeer, progress: CallProgress, schedule: Sequence[KeyPress],
                     sent: list[str]) -> None:
    await peer.channel_open.wait()
    await peer.source.started.wait()
    used_listens = 0
    for press in schedule:
        if press.at_s is None:
            used_listens = await progress.wait_for_listen(used_listens)
        else:
            await asyncio.sleep(max(0.0, press.at_s - peer.source.elapsed_s))  # own clock
        for digit in press.keys:
            peer.send_dtmf(digit)
            sent.append(digit)


async def place_call(server_url: str | Sequence[str], wav_pcm: Pcm, *,
                     hotline_number: str | None = None,
                     locale: str | None = None, caller_number: str | None = None,
                     dtmf: Sequence[KeyPress] = (), codec: str | None = None,
                     grace_s: float = 3.0, timeout_s: float = 30.0,
                     connect_timeout_s: float = 15.0, record: bool = True,
                     on_event: EventCallback | None = None,
                     on_note: NoteCallback | None = None,
                     events_token: str | None = None,
                     retry_wait_max_s: float = 10.0) -> CallResult:
    """Place one call (see the module docstring for when the caller hangs up).

    ``server_url`` may list several nodes: a node that answers 503 (full, draining) or not
    at all is skipped for the next, and when all refused the offer is tried again after
    their ``Retry-After`` (at most ``retry_wait_max_s``; ``app.sim.offer``).

    The call's events are followed with the caller's pass from the answer (what a caller
    may see: the conversation), or with ``events_token`` (an API token with
    ``transcripts:read``: everything, webhooks included).

    ``codec`` ("opus" or "pcmu") restricts the offer to that codec. Raises ``CallError`` when
    the server refuses the offer or ICE fails.
    """
    if codec is not None and codec.lower() not in CODECS:
        raise ValueError(f"unknown codec {codec!r}: use {' or '.join(CODECS)}")
    bases = [server_url] if isinstance(server_url, str) else list(server_url)
    peer = CallerPeer(wav_pcm, codecs=[CODECS[codec.lower()]] if codec else (), record=record)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if on_note is not None:
            on_note(text)

    progress = CallProgress(note)

    follower: asyncio.Task[None] | None = None
    keys: asyncio.Task[None] | None = None
    try:
        started = time.perf_counter()
        answer, base = await _post_offer([b.rstrip("/") for b in bases],
                                         await peer.create_offer(), hotline_number, locale,
                                         caller_number, note, retry_wait_max_s)
        answer_s = time.perf_counter() - started
        call_id = str(answer["call_id"])
        ws_url = "ws" + base.removeprefix("http") + f"/v1/calls/{call_id}/events"
        if answer.get("caller_token") and not events_token:  # the caller's own pass
            ws_url += f"?caller_token={answer['caller_token']}"
        follower = asyncio.create_task(_follow_events(ws_url, progress, on_event,
                                                      events_token))
        await peer.accept_answer(answer["sdp"])
        try:
            async with asyncio.timeout(connect_timeout_s):
                await peer.connected.wait()
        except TimeoutError as exc:
            raise CallError(f"WebRTC connection not established in {connect_timeout_s} s "
                            f"(state {peer.pc.connectionState})") from exc
        connected = time.perf_counter()
        sent: list[str] = []
        keys = asyncio.create_task(_send_keys(peer, progress, dtmf, sent))
        ended_by = await _wait_end(peer, progress, keys, grace_s, timeout_s)
        duration_s = time.perf_counter() - connected
        return CallResult(call_id, connected - started, answer_s, ended_by, peer.received_pcm,
                          progress.events, sent, notes, duration_s)
    finally:
        if keys is not None:  # stop pressing keys at once
            keys.cancel()
            await asyncio.gather(keys, return_exceptions=True)
        await peer.close()
        if follower is not None:
            await _settle([follower], grace_s=2.0)


async def _post_offer(bases: list[str], sdp: str, hotline_number: str | None,
                      locale: str | None, caller_number: str | None,
                      note: Callable[[str], None], retry_wait_max_s: float
                      ) -> tuple[dict[str, Any], str]:
    body: dict[str, Any] = {"sdp": sdp, "type": "offer"}
    for key, value in (("hotline_number", hotline_number), ("locale", locale),
                       ("caller_number", caller_number)):
        if value is not None:
            body[key] = value
    try:
        return await post_offer(bases, body, retry_wait_max_s=retry_wait_max_s, note=note)
    except OfferRefused as exc:
        raise CallError(str(exc)) from None


async def _wait_end(peer: CallerPeer, progress: CallProgress, keys: asyncio.Task[None],
                    grace_s: float, timeout_s: float) -> str:
    async def caller_done() -> str:
        await peer.source.finished.wait()
        await asyncio.shield(keys)
        while True:  # said and pressed everything: hang up once the bot waits grace_s for us
            while not progress.waiting:
                await progress.changed()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await _until_not_waiting(progress)
                continue  # the bot spoke again: wait for its next listen
            return "caller"

    async def server_hung_up() -> str:
        done = asyncio.create_task(progress.server_done.wait())
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


async def _until_not_waiting(progress: CallProgress) -> None:
    while progress.waiting:
        await progress.changed()


async def _settle(tasks: list[asyncio.Task[None]], grace_s: float) -> None:
    """Let the events follower catch ``call_ended`` briefly, then cancel what is left."""
    if tasks:
        await asyncio.wait(tasks, timeout=grace_s)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

