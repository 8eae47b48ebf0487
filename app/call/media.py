"""What a call's media leg (WebRTC, SIP/RTP, a test pipe) offers the ``CallSession``.

This is the only thing a session knows of a transport. A transport is one implementation of
``CallMedia``; it never reaches into flows or routing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from app.events import AudioChunk, Dtmf

# Why a leg ended, as stored in the call record. A transport maps its own signals onto these.
EndReason = Literal[
    "caller_hangup",  # the caller hung up (RTCP BYE / track ended, SIP BYE, CANCEL)
    "media_timeout",  # no caller audio for the configured time: the peer vanished
    "ice_failed",  # WebRTC: ICE never connected, or the connection failed
    "network_lost",  # the transport reported the connection lost
    "session_expired",  # SIP session timer (RFC 4028) ran out without a refresh
    "local_close",  # we closed the leg (the flow hung up, the process stopped)
]
END_REASONS: tuple[str, ...] = EndReason.__args__  # type: ignore[attr-defined]


class CallMedia(Protocol):
    """One caller's audio in and out, at ``sample_rate_hz`` (s16 mono, 20 ms chunks).

    - ``inbound()`` yields the caller's audio and keypad presses, in order, and ends when the
      caller hangs up or the connection is lost; ``end_reason`` then says why.
    - ``play(chunk)`` queues audio for sending; it waits (backpressure) while more than a few
      hundred ms are queued, so the session never runs far ahead of real time.
    - ``flush()`` drops all queued audio at once (barge-in); it returns how many ms it dropped.
    - ``close()`` hangs up our side and releases the connection; idempotent.
    - ``media_info()``: transport facts for the call record (codec, trunk, loss, jitter...),
      JSON-able; read at the end of the call.
    """

    sample_rate_hz: int
    end_reason: EndReason | None

    def inbound(self) -> AsyncIterator[AudioChunk | Dtmf]: ...

    async def play(self, chunk: AudioChunk) -> None: ...

    def flush(self) -> int: ...

    async def close(self) -> None: ...

    def media_info(self) -> dict[str, Any]: ...
