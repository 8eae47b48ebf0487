"""The caller and an agent talking: audio both ways, recording, transcripts, desk actions.

``Talk.run`` bridges the caller's leg (its audio comes from the session's ``Listener``, which
keeps recording it and feeding the recognizer) to the agent's leg (WebRTC desk or phone),
resampling between their rates. The agent's audio is recorded on the right channel and, where
a speech model exists for the call's language, transcribed as ``speaker: agent``; the
caller's final transcripts are logged with their sentiment. The bot says nothing.

Desk actions (``control``): hold/unhold (hold audio to the caller, the agent hears nothing),
mute/unmute (the caller stops hearing the agent), hang up, blind and warm transfer (the
caller waits on hold while the target rings; the agent talks to the target, then completes or
cancels; a target that does not answer brings the caller back to the agent), hand back to
the bot at a flow node. ``run`` returns how the agent's part ended (``TalkEnd``); the caller
hanging up cancels it. Either way the agent's leg is closed and their wrap-up starts, except
for a hand-back, where the agent waits on the line for the bot to return the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from app.call.media import CallMedia
from app.events import AudioChunk, Transcript
from app.handoff.live import CallLink, Connected, DeskError, Exited, LiveRouting
from app.handoff.supervise import AuditEnd, Mode, Supervision
from app.media.audio import StreamResampler
from app.media.hold import HoldMusic
from app.record import (
    AgentConnected,
    AgentDisconnected,
    AgentTransfer,
    HoldChanged,
    MuteChanged,
    SentimentScored,
    TranscriptHeard,
)
from app.routing.config import Target

if TYPE_CHECKING:
    from app.call.session import CallSession

EndReason = Literal["agent_hangup", "agent_dropped", "transfer", "handback", "warm_done"]
DROPPED = ("media_timeout", "network_lost", "ice_failed", "session_expired")
DialNumber = Callable[..., Coroutine[Any, Any, Any]]  # (call_id, number, caller_id, *, cancel)
CALLER_BACKLOG = 25  # chunks (500 ms) of caller audio waiting for the agent's leg


@dataclass
class TalkEnd:
    reason: EndReason
    talk_s: float
    target: Target | None = None  # transfer
    note: str = ""
    node: str | None = None  # handback
    leg: CallMedia | None = None  # handback: the agent's parked leg
    next: Connected | None = None  # warm transfer completed: who has the caller now


class _Sender:
    """Chunks to a leg at its own rate (one resampler per source and destination)."""

    def __init__(self) -> None:
        self._rs: dict[tuple[str, int, int], StreamResampler] = {}

    def convert(self, key: str, chunk: AudioChunk, rate_hz: int) -> AudioChunk:
        if chunk.sample_rate_hz == rate_hz:
            return chunk
        rs = self._rs.get((key, chunk.sample_rate_hz, rate_hz))
        if rs is None:
            rs = StreamResampler(chunk.sample_rate_hz, rate_hz)
            self._rs[(key, chunk.sample_rate_hz, rate_hz)] = rs
        return AudioChunk(rs.process(chunk.pcm), rate_hz, chunk.media_ts_ms)


@dataclass
class _Agent:
    conn: Connected
    started: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> str:
        return self.conn.agent_id

    @property
    def leg(self) -> CallMedia:
        return self.conn.leg


class Talk:
    def __init__(self, call: CallSession, live: LiveRouting, link: CallLink, conn: Connected,
                 *, enqueue_transfer: Any, waited_s: float,
                 dial_number: DialNumber | None = None) -> None:
        """``enqueue_transfer(target, note, agent_id)`` puts the call back into routing
        towards ``target`` (a warm transfer's target rings while the agent stays on);
        ``dial_number(call_id, number, caller_id, cancel=event)`` rings a number routing
        hands over (a warm transfer to a number: ``Phones.dial_number``)."""
        self.dial_number = dial_number
        self.call = call
        self.live = live
        self.link = link
        self.agent = _Agent(conn)
        self.enqueue_transfer = enqueue_transfer
        self.waited_s = waited_s
        self.state: Literal["talking", "hold", "consult"] = "talking"
        self.muted = False
        self.consult: _Agent | None = None
        self.hold_s = 0.0
        self._hold_since: float | None = None
        self._warm: tuple[Target, str] | None = None
        self._dial_cancel: asyncio.Event | None = None  # a warm transfer's number ringing
        self._done: asyncio.Future[TalkEnd] = asyncio.get_running_loop().create_future()
        self._caller_q: asyncio.Queue[AudioChunk] = asyncio.Queue(CALLER_BACKLOG)
        self._send = _Sender()
        self._tasks: list[asyncio.Task[Any]] = []
        self._asr: Any = None
        self.supervision: Supervision | None = None  # one supervisor at a time

    def agents(self) -> set[str]:
        return {self.agent.id} | ({self.consult.id} if self.consult else set())

    def _handback_node(self, body: dict[str, Any]) -> str:
        """The flow node a hand-back returns the caller to: one of the hotline's hand-back
        nodes (checked here, on the node holding the call, so a desk elsewhere gets the same
        answer)."""
        node = str(body.get("node") or "")
        hotline = self.live.service.routing.config.hotline(self.call.info.hotline_number)
        allowed = dict(hotline.handback) if hotline else {}
        if node not in allowed:
            raise DeskError(400, f"the bot does not take callers back at {node!r} (this "
                            f"hotline's hand-back nodes: {', '.join(allowed) or 'none'})")
        return node

    # -- run -----------------------------------------------------------------------------------
    async def run(self) -> TalkEnd:
        call, conn = self.call, self.agent.conn
        setup_ms = round((time.monotonic() - conn.answered_at) * 1000, 1)
        call.events.emit(AgentConnected(agent_id=conn.agent_id, device=conn.device,
                                        offer_id=conn.offer.id if conn.offer else "",
                                        waited_s=round(self.waited_s, 3), setup_ms=setup_ms))
        call.conversation.agent_answered = True
        self.live.talks[call.info.call_id] = self
        self.live.desk.watch(conn.agent_id, call.info.call_id)
        self.live.desk.send(conn.agent_id, {"type": "connected", "call_id": call.info.call_id,
                                            "device": conn.device,
                                            "packet": self.link.packet.model_dump(mode="json")})
        end: TalkEnd | None = None
        try:
            await self._start()
            end = await asyncio.shield(self._done)
            return end
        finally:
            await self._stop(end)

    async def _start(self) -> None:
        call = self.call
        call.listener.tap = self._caller_chunk
        await call.listener.open(call.locale, None)  # free speech: transcribe the caller
        self._open_agent_asr()
        self._tasks += [
            asyncio.create_task(self._caller_out(), name=f"talk-out-{call.info.call_id}"),
            asyncio.create_task(self._agent_in(self.agent), name=f"talk-in-{call.info.call_id}"),
            asyncio.create_task(self._caller_text(), name=f"talk-text-{call.info.call_id}"),
        ]

    async def _stop(self, end: TalkEnd | None) -> None:
        call, agent = self.call, self.agent
        call.listener.tap = None
        if self.supervision is not None:
            await self.supervision.close("talk_ended")
        self.state = "talking"
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._asr is not None:
            with contextlib.suppress(Exception):
                await self._asr.aclose()
        self.live.talks.pop(call.info.call_id, None)
        if self._hold_since is not None:
            self.hold_s += time.monotonic() - self._hold_since
        reason = end.reason if end is not None else "caller_hangup"
        talk_s = round(time.monotonic() - agent.started, 3)
        call.events.emit(AgentDisconnected(agent_id=agent.id, reason=reason, talk_s=talk_s,
                                           hold_s=round(self.hold_s, 3)))
        if self.consult is not None and (end is None or end.next is None):
            await self._end_consult("cancelled")
        if end is not None and end.reason == "handback":
            return  # the agent waits on the line for the bot to return the caller
        with contextlib.suppress(Exception):
            await agent.leg.close()
        group = agent.conn.offer.group if agent.conn.offer else None
        await self.live.call_ended(agent.id, call.info.call_id, talk_s, group)

    def _finish(self, end: TalkEnd) -> None:
        if not self._done.done():
            self._done.set_result(end)

    def _talk_s(self) -> float:
        return round(time.monotonic() - self.agent.started, 3)

    # -- audio ---------------------------------------------------------------------------------
    def _caller_chunk(self, chunk: AudioChunk) -> None:
        if self.supervision is not None:
            self.supervision.heard_caller(chunk)
        if self.state != "talking":
            return
        if self._caller_q.full():
            self._caller_q.get_nowait()
        self._caller_q.put_nowait(chunk)

    async def _caller_out(self) -> None:
        while True:
            chunk = await self._caller_q.get()
            leg = self.agent.leg
            chunk = self._send.convert("caller", chunk, leg.sample_rate_hz)
            if self.supervision is not None:  # whisper, barge: the agent hears them too
                chunk = AudioChunk(self.supervision.to_agent(chunk.pcm), chunk.sample_rate_hz,
                                   chunk.media_ts_ms)
            await leg.play(chunk)

    async def _agent_in(self, agent: _Agent) -> None:
        media = self.call.media
        async for item in agent.leg.inbound():
            recorder = self.call.recorder  # None once recording failed
            if not isinstance(item, AudioChunk) or agent is not self.agent:
                continue
            if self._asr is not None:
                self._asr.push(item)
            if self.supervision is not None:
                self.supervision.heard_agent(item)
            if self.state == "consult" and self.consult is not None:
                await self.consult.leg.play(self._send.convert(
                    "a2b", item, self.consult.leg.sample_rate_hz))
            elif self.state == "talking" and not self.muted:
                chunk = self._send.convert("agent", item, media.sample_rate_hz)
                if self.supervision is not None:  # barge: the caller hears them too
                    chunk = AudioChunk(self.supervision.to_caller(chunk.pcm),
                                       chunk.sample_rate_hz, chunk.media_ts_ms)
                if recorder is not None:
                    recorder.bot(chunk)
                await media.play(chunk)
        reason = agent.leg.end_reason
        self._finish(TalkEnd("agent_dropped" if reason in DROPPED else "agent_hangup",
                             self._talk_s()))

    async def _hold_music(self) -> None:
        media = self.call.media
        hold = HoldMusic(media.sample_rate_hz)
        while True:
            chunk = hold.next_chunk()
            if self.call.recorder is not None:
                self.call.recorder.bot(chunk)
            await media.play(chunk)

    # -- supervisor ----------------------------------------------------------------------------
    def supervise(self, supervisor: str, mode: Mode, leg: CallMedia, audit_end: AuditEnd
                  ) -> Supervision:
        """A supervisor joins on ``leg`` (the caller hears them only when barging)."""
        if self.supervision is not None:
            raise DeskError(409, f"call {self.call.info.call_id} is supervised by "
                            f"{self.supervision.supervisor} (one supervisor per call)")

        def closed(done: Supervision) -> None:
            if self.supervision is done:
                self.supervision = None

        self.supervision = Supervision(self.call, self.agent.id, self.agent.leg, supervisor,
                                       mode, leg, audit_end=audit_end, on_closed=closed)
        self.supervision.start()
        return self.supervision

    # -- transcripts -----------------------------------------------------------------------------
    def _open_agent_asr(self) -> None:
        asr, locale = self.call.deps.asr, self.call.locale
        if asr is None or locale not in asr.available_locales():
            return
        try:
            self._asr = asr.stream(locale, self.agent.leg.sample_rate_hz, None,
                                   call_id=self.call.info.call_id)
        except Exception as exc:  # the call goes on without the agent's transcript
            self.call.log.warning("agent_asr_unavailable", error=repr(exc))
            return
        self._tasks.append(asyncio.create_task(self._agent_text(self._asr),
                                               name=f"talk-agent-asr-{self.call.info.call_id}"))

    async def _agent_text(self, stream: Any) -> None:
        async for item in stream:
            if isinstance(item, Transcript) and item.is_final and item.text.strip():
                self.call.events.emit(TranscriptHeard(
                    text=item.text, is_final=True, speaker="agent",
                    confidence=round(item.confidence, 3)))

    async def _caller_text(self) -> None:
        call = self.call
        while True:
            item = await call.listener.inputs.get()
            if not isinstance(item, Transcript) or not item.text.strip():
                continue
            call.events.emit(TranscriptHeard(text=item.text, is_final=True, speaker="caller",
                                             confidence=round(item.confidence, 3)))
            nlu = call.deps.nlu
            if nlu is None:
                continue
            try:
                understood = await nlu.understand_async(item.text, call.locale)
            except Exception as exc:  # the transcript stands without its sentiment
                call.log.warning("talk_sentiment_failed", error=repr(exc))
                continue
            sentiment = understood.sentiment
            call.events.emit(SentimentScored(score=round(sentiment.score, 3),
                                             label=sentiment.label))

    # -- desk actions ------------------------------------------------------------------------------
    async def control(self, agent_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if agent_id != self.agent.id:
            raise DeskError(409, f"{agent_id} is the transfer target; {self.agent.id} has "
                            "the call")
        if action in ("hold", "unhold"):
            self._set_hold(action == "hold")
        elif action in ("mute", "unmute"):
            self.muted = action == "mute"
            self.call.events.emit(MuteChanged(agent_id=agent_id, on=self.muted))
        elif action == "hangup":
            self._finish(TalkEnd("agent_hangup", self._talk_s()))
        elif action == "handback":
            node = self._handback_node(body)
            self._finish(TalkEnd("handback", self._talk_s(), node=node, leg=self.agent.leg))
        elif action == "transfer":
            target, note, mode = body["target"], str(body.get("note") or ""), body["mode"]
            if mode == "blind":
                self.call.events.emit(AgentTransfer(agent_id=agent_id, mode="blind",
                                                    target=target.describe(), note=note,
                                                    outcome="started"))
                self._finish(TalkEnd("transfer", self._talk_s(), target=target, note=note))
            else:
                await self._start_warm(target, note)
        elif action in ("complete", "cancel"):
            await self._warm_done(action == "complete")
        else:
            raise DeskError(400, f"unknown action {action!r}")
        return {"state": self.state, "muted": self.muted}

    def _set_hold(self, on: bool) -> None:
        if self.state == "consult":
            raise DeskError(409, "the caller is on hold for the transfer; complete or cancel it")
        if on == (self.state == "hold"):
            return
        self.state = "hold" if on else "talking"
        self._hold_audio(on)
        self.call.events.emit(HoldChanged(agent_id=self.agent.id, on=on))

    def _hold_audio(self, on: bool) -> None:
        """Hold audio to the caller (and hold time counted) while ``on``."""
        music = next((t for t in self._tasks if t.get_name().startswith("talk-hold")), None)
        if on and music is None:
            self._hold_since = time.monotonic()
            self._tasks.append(asyncio.create_task(
                self._hold_music(), name=f"talk-hold-{self.call.info.call_id}"))
        elif not on and music is not None:
            music.cancel()
            self._tasks.remove(music)
            self.call.media.flush()
            if self._hold_since is not None:
                self.hold_s += time.monotonic() - self._hold_since
                self._hold_since = None

    # -- warm transfer -----------------------------------------------------------------------------
    async def _start_warm(self, target: Target, note: str) -> None:
        if self._warm is not None or self.consult is not None:
            raise DeskError(409, "a transfer is already under way")
        if self.state == "hold":
            self._set_hold(False)
        self.state = "consult"  # the caller hears hold audio; the agent waits for the target
        self._hold_audio(True)
        self._warm = (target, note)
        self.call.events.emit(AgentTransfer(agent_id=self.agent.id, mode="warm",
                                            target=target.describe(), note=note,
                                            outcome="started"))
        await self.enqueue_transfer(target, note, self.agent.id)
        self._tasks.append(asyncio.create_task(self._await_target(),
                                               name=f"talk-warm-{self.call.info.call_id}"))

    async def _await_target(self) -> None:
        decision: Connected | Exited | None = await self.link.decisions.get()
        if isinstance(decision, Exited):
            decision = await self._dial_target(decision)
            if decision is None:
                return
        assert isinstance(decision, Connected)
        self.consult = _Agent(decision)
        call_id = self.call.info.call_id
        self.live.desk.send(self.agent.id, {"type": "consult", "call_id": call_id,
                                            "agent_id": decision.agent_id})
        self.live.desk.watch(decision.agent_id, call_id)
        self.live.desk.send(decision.agent_id, {
            "type": "connected", "call_id": call_id, "device": decision.device,
            "consult_with": self.agent.id, "packet": self.link.packet.model_dump(mode="json")})
        self._tasks.append(asyncio.create_task(self._consult_in(self.consult),
                                               name=f"talk-consult-{self.call.info.call_id}"))

    async def _consult_in(self, target: _Agent) -> None:
        async for item in target.leg.inbound():
            if isinstance(item, AudioChunk) and self.state == "consult":
                await self.agent.leg.play(self._send.convert("b2a", item,
                                                             self.agent.leg.sample_rate_hz))
        if self.consult is target:  # the target hung up before the transfer completed
            await self._end_consult("failed")
            self._back_from_warm("failed", f"the target hung up ({target.leg.end_reason})")

    async def _dial_target(self, exit_: Exited) -> Connected | None:
        """Routing handed a warm transfer's number over: it rings while the caller holds;
        no answer, busy or a cancelled transfer brings the caller back to the agent."""
        if exit_.action != "dial_number" or not exit_.number or self.dial_number is None:
            self._warm_failed(f"{exit_.action}: {exit_.reason}")
            return None
        info, warm = self.call.info, self._warm
        self._dial_cancel = asyncio.Event()
        result = await self.dial_number(info.call_id, exit_.number, info.hotline_number,
                                        cancel=self._dial_cancel)
        if self._warm is not warm:  # the agent cancelled while it rang
            if isinstance(result, Connected):
                with contextlib.suppress(Exception):
                    await result.leg.close()
            return None
        if not isinstance(result, Connected):
            self._warm_failed(f"{exit_.number}: {result}")
            return None
        return result

    def _warm_failed(self, detail: str) -> None:
        self._back_from_warm("failed", detail)

    def _back_from_warm(self, outcome: Literal["failed", "cancelled"], detail: str) -> None:
        if self._warm is None:
            return
        target, note = self._warm
        self._warm = None
        self.state = "talking"
        self._hold_audio(False)
        self.call.events.emit(AgentTransfer(agent_id=self.agent.id, mode="warm",
                                            target=target.describe(), note=note,
                                            outcome=outcome, detail=detail[:200]))
        self.live.desk.send(self.agent.id, {"type": "transfer_result",
                                            "call_id": self.call.info.call_id,
                                            "outcome": outcome, "detail": detail})

    async def _warm_done(self, complete: bool) -> None:
        if self._warm is None:
            raise DeskError(409, "no transfer is under way")
        if self.consult is None:
            if complete:
                raise DeskError(409, "the target has not answered yet")
            await self.live.leave(self.call.info.call_id, "cancelled")
            if self._dial_cancel is not None:
                self._dial_cancel.set()  # a number still ringing stops
            self._back_from_warm("cancelled", "cancelled before the target answered")
            return
        if not complete:
            await self._end_consult("cancelled")
            self._back_from_warm("cancelled", "cancelled by the agent")
            return
        target, note = self._warm
        self._warm = None
        self._hold_audio(False)
        self.call.events.emit(AgentTransfer(agent_id=self.agent.id, mode="warm",
                                            target=target.describe(), note=note,
                                            outcome="completed"))
        self.state = "talking"
        next_conn, self.consult = self.consult.conn, None
        self._finish(TalkEnd("warm_done", self._talk_s(), next=next_conn))

    async def _end_consult(self, outcome: str) -> None:
        target, self.consult = self.consult, None
        if target is None:
            return
        with contextlib.suppress(Exception):
            await target.leg.close()
        group = target.conn.offer.group if target.conn.offer else None
        await self.live.call_ended(target.id, self.call.info.call_id,
                             round(time.monotonic() - target.started, 3), group)
        self.live.desk.send(target.id, {"type": "transfer_result",
                                        "call_id": self.call.info.call_id, "outcome": outcome})
