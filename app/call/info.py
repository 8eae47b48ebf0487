"""What a call is (``CallInfo``) and the shared parts every call uses (``CallDeps``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from app.call.ports import (
    AgentHandoff,
    CallStore,
    EventPublisher,
    SpeechRecognizer,
    Synthesizer,
    Understander,
)
from app.events import utc_now
from app.flows.engine import FlowEngine
from app.routing.waiting import QueueBoard
from app.settings import Settings


@dataclass
class CallDeps:
    """The shared, process-wide parts a call uses (loaded once, ``app.services``)."""

    settings: Settings
    store: CallStore
    bus: EventPublisher
    engine: FlowEngine
    tts: Synthesizer | None
    asr: SpeechRecognizer | None
    nlu: Understander | None
    http: httpx.AsyncClient
    queues: QueueBoard
    clock: Callable[[], datetime] = utc_now  # the flows' "now" (business hours, holidays)
    handoff: AgentHandoff | None = None  # routing to agents (app.handoff); None: the queue


@dataclass
class CallInfo:
    call_id: str
    flow_id: str
    hotline_number: str
    caller_number: str
    locale: str
    channel: str
    recording: bool = False
    default_locale: str = "en"  # the flow's: apologies fall back to it
