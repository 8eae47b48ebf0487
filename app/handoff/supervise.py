"""A supervisor on a call with an agent: listen, whisper, barge.

One ``Supervision`` per talking call (one supervisor at a time), owned by the call's ``Talk``,
which hands it each side's audio as it flows and asks it what to add:

- **listen**: the supervisor hears the caller and the agent mixed (``TwoWayMix`` at the
  supervisor leg's rate, paced by that leg's playout); nobody hears the supervisor.
- **whisper**: as listen, and the agent hears the supervisor mixed into the caller's audio
  (at the agent leg's rate); the caller does not.
- **barge**: as whisper, and the caller hears the supervisor mixed into the agent's audio.

Nothing here blocks the loop or the call: the hooks (``heard_caller``, ``heard_agent``,
``to_agent``, ``to_caller``) are synchronous and bounded; the supervisor's leg is read and
fed by two tasks of its own. The session ends when the supervisor leaves, their leg drops,
or the talk ends (``close``); joins, mode changes and the end are events of the call's
record (``supervisor_joined``, ``supervisor_mode``, ``supervisor_left``) and the end is
audited through ``audit_end`` (the API audits the join and mode changes before they apply).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from app.call.media import CallMedia
from app.events import FRAME_MS, AudioChunk
from app.media.audio import StreamResampler
from app.media.mix import SampleFifo, TwoWayMix
from app.record import SupervisorJoined, SupervisorLeft, SupervisorMode

if TYPE_CHECKING:
    from app.call.session import CallSession

Mode = Literal["listen", "whisper", "barge"]
MODES: tuple[Mode, ...] = ("listen", "whisper", "barge")
OUT_BACKLOG = 15  # mixed frames (300 ms) waiting for the supervisor's leg
AuditEnd = Callable[[dict[str, Any]], Awaitable[None]]


class _Rates:
    """One resampler per (stream, from, to), so each stream is resampled without clicks."""

    def __init__(self) -> None:
        self._rs: dict[tuple[str, int, int], StreamResampler] = {}

    def convert(self, key: str, chunk: AudioChunk, rate_hz: int) -> bytes:
        if chunk.sample_rate_hz == rate_hz:
            return chunk.pcm
        rs = self._rs.setdefault((key, chunk.sample_rate_hz, rate_hz),
                                 StreamResampler(chunk.sample_rate_hz, rate_hz))
        return rs.process(chunk.pcm)


class Supervision:
    def __init__(self, call: CallSession, agent_id: str, agent_leg: CallMedia, supervisor: str,
                 mode: Mode, leg: CallMedia, *, audit_end: AuditEnd,
                 on_closed: Callable[[Supervision], None]) -> None:
        self.call = call
        self.agent_id = agent_id
        self.supervisor = supervisor
        self.mode: Mode = mode
        self.leg = leg
        self.audit_end = audit_end
        self.on_closed = on_closed
        self.started = time.monotonic()
        self.closed = False
        self._agent_rate_hz = agent_leg.sample_rate_hz
        self._listen = TwoWayMix(leg.sample_rate_hz)
        self._to_agent = SampleFifo(agent_leg.sample_rate_hz)
        self._to_caller = SampleFifo(call.media.sample_rate_hz)
        self._out: asyncio.Queue[bytes] = asyncio.Queue(OUT_BACKLOG)
        self._rates = _Rates()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        call_id = self.call.info.call_id
        self.call.events.emit(SupervisorJoined(supervisor=self.supervisor, mode=self.mode,
                                               agent_id=self.agent_id))
        self.call.log.info("supervisor_joined", supervisor=self.supervisor, mode=self.mode)
        self._tasks += [
            asyncio.create_task(self._play_out(), name=f"supervise-out-{call_id}"),
            asyncio.create_task(self._read_in(), name=f"supervise-in-{call_id}"),
        ]

    def state(self) -> dict[str, Any]:
        return {"call_id": self.call.info.call_id, "supervisor": self.supervisor,
                "mode": self.mode, "agent_id": self.agent_id,
                "supervised_s": round(time.monotonic() - self.started, 3)}

    def set_mode(self, mode: Mode) -> None:
        if mode == self.mode or self.closed:
            return
        previous, self.mode = self.mode, mode
        if mode == "listen":
            self._to_agent.clear()
        if mode != "barge":
            self._to_caller.clear()
        self.call.events.emit(SupervisorMode(supervisor=self.supervisor, mode=mode,
                                             previous=previous))

    # -- the call's audio (called by Talk, synchronous and bounded) ---------------------------
    def heard_caller(self, chunk: AudioChunk) -> None:
        self._to_listener(0, self._rates.convert("caller", chunk, self.leg.sample_rate_hz))

    def heard_agent(self, chunk: AudioChunk) -> None:
        self._to_listener(1, self._rates.convert("agent", chunk, self.leg.sample_rate_hz))

    def to_agent(self, pcm: bytes) -> bytes:
        """What the agent hears: ``pcm`` (the caller, at the agent leg's rate) with the
        supervisor's voice mixed in when whispering or barging."""
        return self._to_agent.mix_into(pcm) if self.mode != "listen" else pcm

    def to_caller(self, pcm: bytes) -> bytes:
        """What the caller hears: ``pcm`` (the agent, at the call's rate) with the
        supervisor's voice mixed in when barging."""
        return self._to_caller.mix_into(pcm) if self.mode == "barge" else pcm

    def _to_listener(self, side: int, pcm: bytes) -> None:
        if self.closed:
            return
        for frame in self._listen.push(side, pcm):
            if self._out.full():
                self._out.get_nowait()  # a slow leg loses the oldest audio, never the call
            self._out.put_nowait(frame)

    # -- the supervisor's leg -------------------------------------------------------------------
    async def _play_out(self) -> None:
        ts_ms, rate = 0, self.leg.sample_rate_hz
        while True:
            frame = await self._out.get()
            await self.leg.play(AudioChunk(frame, rate, ts_ms))  # paced by the leg's playout
            ts_ms += FRAME_MS

    async def _read_in(self) -> None:
        async for item in self.leg.inbound():
            if not isinstance(item, AudioChunk) or self.mode == "listen":
                continue
            self._to_agent.push(self._rates.convert("to-agent", item, self._agent_rate_hz))
            if self.mode == "barge":
                self._to_caller.push(self._rates.convert(
                    "to-caller", item, self.call.media.sample_rate_hz))
        await self.close(f"supervisor_{self.leg.end_reason or 'hangup'}")

    async def close(self, reason: str) -> None:
        """End the session (idempotent): the leg closed, ``supervisor_left``, the audit."""
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.leg.close()
        supervised_s = round(time.monotonic() - self.started, 3)
        self.call.events.emit(SupervisorLeft(supervisor=self.supervisor, mode=self.mode,
                                             reason=reason[:60], supervised_s=supervised_s))
        self.call.log.info("supervisor_left", supervisor=self.supervisor, reason=reason)
        self.on_closed(self)
        try:
            await self.audit_end({"mode": self.mode, "reason": reason[:60],
                                  "supervised_s": supervised_s})
        except Exception as exc:  # the session is over either way; say it was not audited
            self.call.log.error("supervisor_audit_failed", supervisor=self.supervisor,
                                error=repr(exc))
