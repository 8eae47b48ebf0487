"""What a call session needs from the rest of the process, as small Protocols.

The real implementations are wired once in ``app.services.build_services``: Vosk
(``app.asr.engine.AsrEngine``), espeak (``app.tts.service.TtsService``), the intent classifier
(``app.nlu.service.NluService``), the database (``app.storage.repository.CallRepository``) and
the live bus (``app.call.bus.EventBus``). Tests use the same wiring; fakes exist only at the
lowest layer (``tests/fakes.py``), for failure injection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from app.events import Alternative, AudioChunk, Entity, IntentResult, Sentiment
from app.flows.runtime import CallerInput, ResumeAt, Transfer
from app.media.audio import Pcm


class AsrStream(Protocol):
    """One call's recognizer stream: push audio, read ``Transcript``/``SpeechActivity``."""

    def push(self, chunk: AudioChunk) -> None: ...

    def set_grammar(self, phrases: Sequence[str] | None) -> None: ...

    def end_input(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def aclose(self) -> None: ...


class SpeechRecognizer(Protocol):
    def available_locales(self) -> set[str]: ...

    def stream(self, locale: str, sample_rate_hz: int, grammar: list[str] | None = None,
               call_id: str | None = None) -> AsrStream: ...


class Synthesizer(Protocol):
    def stream(self, text: str, locale: str, sample_rate_hz: int, *, cache: bool = True
               ) -> AsyncIterator[AudioChunk]:
        """``cache`` False: the text carries caller data and is never kept on disk."""
        ...

    async def prompt_wav(self, path: Path, sample_rate_hz: int) -> Pcm: ...


class Understood(Protocol):
    intent: IntentResult
    entities: list[Entity]
    sentiment: Sentiment


class Understander(Protocol):
    async def understand_async(self, heard: str | Sequence[Alternative], locale: str
                               ) -> Understood:
        """Intent, entities and sentiment of a turn: its text, or the recognizer's n-best."""


class CallStore(Protocol):
    """The call record in the database (blocking methods: run off the event loop)."""

    def start_call(self, call_id: str, hotline_number: str, caller_number: str, channel: str,
                   locale: str, started_at: datetime, flow_id: str | None = None, *,
                   node_id: str | None = None) -> None: ...

    def append_events(self, call_id: str,
                      events: Sequence[tuple[dict[str, Any], datetime]]) -> list[int]: ...

    def end_call(self, call_id: str, outcome: str, ended_at: datetime, *,
                 flow_state: dict[str, Any] | None = None) -> Any: ...

    def add_recording(self, call_id: str, path: str, duration_s: float,
                      caller_notified: bool) -> None: ...


class EventPublisher(Protocol):
    """Live fan-out of a call's events (agent desks, monitors, the call's own WebSocket)."""

    def publish(self, event: dict[str, Any]) -> None: ...


class AgentHandoff(Protocol):
    """Where a voice call waits for a human (``app.handoff``): routing, agents, the desk."""

    def serves(self, hotline_number: str) -> bool:
        """Whether the routing knows this hotline (else the call waits in the flow's queue
        until its max wait, as ``app.routing.waiting`` does)."""
        ...

    async def wait_for_agent(self, call: Any, action: Transfer) -> CallerInput | ResumeAt | None:
        """``call`` is the ``CallSession``; see ``ConversationIO.wait_for_agent``."""
        ...

    async def call_ending(self, call: Any) -> None:
        """The call is ending: release what was kept for it (a waiting agent, its queue
        entry) and queue the callback it asked for."""
        ...
