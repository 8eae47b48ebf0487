"""What a call's media leg (WebRTC today, SIP/RTP later) offers the ``CallSession``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from app.events import AudioChunk, Dtmf


class CallMedia(Protocol):
    """One caller's audio in and out, at ``sample_rate_hz`` (16 kHz s16 mono, 20 ms chunks).

    - ``inbound()`` yields the caller's audio and keypad presses, in order, and ends when the
      caller hangs up or the connection is lost.
    - ``play(chunk)`` queues bot audio for sending; it waits (backpressure) while more than a
      few hundred ms are queued, so the session never runs far ahead of real time.
    - ``flush()`` drops all queued bot audio at once (barge-in); it returns how many ms it
      dropped.
    - ``close()`` hangs up our side and releases the connection; idempotent.
    """

    sample_rate_hz: int

    def inbound(self) -> AsyncIterator[AudioChunk | Dtmf]: ...

    async def play(self, chunk: AudioChunk) -> None: ...

    def flush(self) -> int: ...

    async def close(self) -> None: ...
