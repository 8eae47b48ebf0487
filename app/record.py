"""The call record: every entry of a call's append-only event log, as one typed union.

Each event is a frozen pydantic model with a ``type`` literal; ``CallEvent`` is their
discriminated union. An event is validated once when it is built and serialized once
(``event_payload``, then masked by the call's ``app.pii.Redactor`` in
``app.call.eventlog.CallEventLog.emit``) for both the live bus and the database. The CDR,
the transcript, the flow path and the handoff packet are views computed from the log
(``transcript_turns``, ``handoff_packet`` here; the CDR in ``app.storage.repository``),
never kept twice.

Adding an event: a class here with ``type: Literal["name"] = "name"``, listed in ``CallEvent``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.events import Alternative, Entity

Channel = Literal["webrtc", "sip", "cli", "chat"]
Speaker = Literal["caller", "bot", "agent"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- lifecycle ----------------------------------------------------------------------------------
class CallStarted(_Event):
    type: Literal["call_started"] = "call_started"
    hotline_number: str
    caller_number: str
    channel: Channel
    locale: str
    flow_id: str


class CallEnded(_Event):
    type: Literal["call_ended"] = "call_ended"
    outcome: str
    end_reason: str | None = None  # the media leg's (CallMedia.end_reason), or None
    duration_s: float | None = None
    locale: str | None = None  # the language the call ended in
    media: dict[str, Any] = Field(default_factory=dict)  # CallMedia.media_info()
    finalized_at: str | None = None  # set when a later process finalized it (crash)


class CallError(_Event):
    type: Literal["error"] = "error"
    reason: str
    detail: str = ""
    where: str = ""  # which part failed: "flow", "listen", "asr", "tts", "storage", ...


class Hangup(_Event):
    type: Literal["hangup"] = "hangup"
    outcome: str


class LocaleChanged(_Event):
    type: Literal["locale_changed"] = "locale_changed"
    locale: str


# -- caller input -------------------------------------------------------------------------------
class DtmfPressed(_Event):
    type: Literal["dtmf"] = "dtmf"
    digit: str


class TranscriptHeard(_Event):
    """What a speaker said (final) or is saying (partial)."""

    type: Literal["transcript"] = "transcript"
    text: str
    is_final: bool
    speaker: Speaker = "caller"
    confidence: float | None = None
    grammar: bool = False
    rejected: str | None = None  # "low_confidence": heard, but not taken as an answer
    start_s: float | None = None  # seconds from the start of the speaker's stream
    end_s: float | None = None
    alternatives: list[Alternative] = Field(default_factory=list)  # recognizer n-best


class Listening(_Event):
    type: Literal["listen"] = "listen"
    grammar: list[str] | None = None
    timeout_s: float
    keypad_only: bool = False


class NoInput(_Event):
    type: Literal["no_input"] = "no_input"
    timeout_s: float


class BargeIn(_Event):
    type: Literal["barge_in"] = "barge_in"
    trigger: str
    dropped_ms: int


class AsrGrammarRejected(_Event):
    type: Literal["asr_grammar_rejected"] = "asr_grammar_rejected"
    reason: str


class AsrWorkerRestarted(_Event):
    type: Literal["asr_worker_restarted"] = "asr_worker_restarted"
    gap_ms: int | None = None


class SpeechUnavailable(_Event):
    """Speech recognition stopped mid-call: the call goes on with the keypad."""

    type: Literal["speech_unavailable"] = "speech_unavailable"
    reason: str


# -- understanding ------------------------------------------------------------------------------
class IntentDetected(_Event):
    type: Literal["intent"] = "intent"
    intent: str | None
    confidence: float
    reason: str = "ok"
    alternative: int | None = None  # which recognizer alternative won (n-best)


class SentimentScored(_Event):
    type: Literal["sentiment"] = "sentiment"
    score: float
    label: str


class EntitiesFound(_Event):
    type: Literal["entities"] = "entities"
    entities: list[Entity]


# -- the bot's side -----------------------------------------------------------------------------
class PromptPlayed(_Event):
    type: Literal["prompt_played"] = "prompt_played"
    text: str = ""
    wav: str | None = None
    locale: str
    barge_in: bool | None = None  # may the caller interrupt it (keys typed during it wait)
    display: str | None = None  # what a screen showed (web chat), when not the spoken text


class SpeechFailed(_Event):
    """A prompt could not be synthesized or played; the call went on without it."""

    type: Literal["tts_failed"] = "tts_failed"
    text: str = ""
    reason: str


class TurnLatency(_Event):
    type: Literal["turn_latency"] = "turn_latency"
    ms: float
    after_endpoint_ms: float


class FlowStep(_Event):
    """One decision of the flow engine (``app.flows``), with what it decided on."""

    type: Literal["flow_step"] = "flow_step"
    flow: str
    node: str
    input: str = ""
    decision: str
    confidence: float | None = None
    kind: str | None = None
    target: str | None = None
    reason: str | None = None
    intent: str | None = None
    url: str | None = None
    attempts: int | None = None
    slot: str | None = None
    value: str | None = None
    status: int | None = None
    error: str | None = None
    message: str | None = None
    number: str | None = None


class NodeEntered(_Event):
    type: Literal["node_entered"] = "node_entered"
    node: str


class WebhookCalled(_Event):
    type: Literal["webhook"] = "webhook"
    url: str
    phase: Literal["request", "result"]
    ok: bool | None = None
    status: int | None = None


# -- handoff and queue --------------------------------------------------------------------------
class TransferRequested(_Event):
    type: Literal["transfer"] = "transfer"
    queue: str
    reason: str
    note: str = ""


class CrmResult(_Event):
    """What the CRM webhook said about the caller (VIP, account data): routing rules read it
    (``when: {crm: {vip: true}}``) and ``hotline routing replay`` replays it."""

    type: Literal["crm"] = "crm"
    data: dict[str, Any] = Field(default_factory=dict)


class TranscriptTurn(BaseModel):
    """One turn of the conversation, as the agent reads it (a view of the log)."""

    model_config = ConfigDict(frozen=True)

    speaker: Speaker
    text: str
    seq: int = 0
    confidence: float | None = None
    heard: Literal["sure", "unsure"] = "sure"


class HandoffRequested(_Event):
    """What the agent sees before saying a word: why, intent, mood, the conversation."""

    type: Literal["handoff_requested"] = "handoff_requested"
    queue: str
    reason: str
    note: str = ""
    intent: str | None = None
    confidence: float | None = None
    sentiment: float | None = None
    transcript: list[TranscriptTurn] = Field(default_factory=list)
    flow_path: list[str] = Field(default_factory=list)


class QueuePosition(_Event):
    type: Literal["queue_position"] = "queue_position"
    queue: str
    position: int


class QueueTimeout(_Event):
    type: Literal["queue_timeout"] = "queue_timeout"
    queue: str
    waited_s: float


# -- routing and the human side (app/handoff) ------------------------------------------------
class RoutingDecided(_Event):
    """Which rule matched, the target, and why (``app.routing.events.RoutingDecision``)."""

    type: Literal["routing_decision"] = "routing_decision"
    rule: str | None = None
    source: str
    target: str | None = None
    reason: str
    steps: list[str] = Field(default_factory=list)


class QueueJoinedEvent(_Event):
    type: Literal["queue_joined"] = "queue_joined"
    group: str
    position: int
    estimated_wait_s: float | None = None
    priority: int = 0
    callback: bool = False


class QueueLeftEvent(_Event):
    type: Literal["queue_left"] = "queue_left"
    group: str
    reason: str  # answered, abandoned, overflow, callback, cancelled
    waited_s: float


class OverflowEvent(_Event):
    type: Literal["overflow"] = "overflow"
    from_step: str
    to_step: str
    reason: str


class QueueExitEvent(_Event):
    """The call left routing for the flow: voicemail, callback offer, a number, no route."""

    type: Literal["queue_exit"] = "queue_exit"
    action: str
    number: str | None = None
    reason: str
    group: str | None = None


class OfferEvent(_Event):
    """An offer of the call to an agent was made (pending) or ended (any other state)."""

    type: Literal["offer"] = "offer"
    offer_id: str
    agent_id: str
    group: str | None = None
    state: str
    devices: list[str] = Field(default_factory=list)
    ring_timeout_s: float = 0.0


class RingEnded(_Event):
    """One device of an offered agent stopped ringing: answered, no_answer, busy, declined,
    cancelled (another device or agent answered, the caller hung up) or failed."""

    type: Literal["ring"] = "ring"
    agent_id: str
    device: str
    outcome: str
    ring_s: float
    detail: str = ""


class AnnouncedPosition(_Event):
    """The caller heard their place and estimated wait (only when they improved)."""

    type: Literal["queue_announced"] = "queue_announced"
    group: str
    position: int
    wait_min: int | None = None


class AgentConnected(_Event):
    type: Literal["agent_connected"] = "agent_connected"
    agent_id: str
    device: str
    offer_id: str = ""
    waited_s: float = 0.0  # from the first entry into routing
    setup_ms: float | None = None  # answer -> the legs bridged


class AgentDisconnected(_Event):
    """The agent's part ended: agent_hangup, caller_hangup, agent_dropped, transfer,
    handback (the bot has the caller; the agent waits), call_end."""

    type: Literal["agent_disconnected"] = "agent_disconnected"
    agent_id: str
    reason: str
    talk_s: float
    hold_s: float = 0.0


class HoldChanged(_Event):
    type: Literal["hold"] = "hold"
    agent_id: str
    on: bool


class MuteChanged(_Event):
    type: Literal["mute"] = "mute"
    agent_id: str
    on: bool


class AgentTransfer(_Event):
    """An agent's transfer: blind or warm, to an agent, group or number; its outcome."""

    type: Literal["agent_transfer"] = "agent_transfer"
    agent_id: str
    mode: Literal["blind", "warm"]
    target: str
    note: str = ""
    outcome: Literal["started", "completed", "failed", "cancelled"]
    detail: str = ""


class HandBack(_Event):
    """The agent handed the caller back to the bot at ``node`` (started) and got them back
    with what the bot collected (returned)."""

    type: Literal["handback"] = "handback"
    agent_id: str
    node: str
    phase: Literal["started", "returned", "ended"]
    result: dict[str, Any] = Field(default_factory=dict)


class WrapUp(_Event):
    """The agent's wrap-up: disposition, notes, and whether the bot should have handled
    the call (with the right intent); ``draft`` is what the bot proposed."""

    type: Literal["wrap_up"] = "wrap_up"
    agent_id: str
    disposition: str
    notes: str = ""
    bot_should_handle: bool = False
    intent: str | None = None
    draft: dict[str, Any] = Field(default_factory=dict)
    corrected: bool = False


class CallbackOffered(_Event):
    """The queued caller was offered to keep their place and be called back."""

    type: Literal["callback_offered"] = "callback_offered"
    group: str | None = None
    waited_s: float = 0.0


class CallbackQueued(_Event):
    """The caller will be called back: a task in routing. ``joined_at`` (their place) and
    ``request`` (the routing request, JSON) let another node, or this one after a restart,
    queue the task again (``app.handoff.adopt``)."""

    type: Literal["callback_queued"] = "callback_queued"
    number: str
    group: str | None = None
    joined_at: datetime | None = None
    request: dict[str, Any] | None = None


class CallbackAdopted(_Event):
    """A queued callback of a lost node (``from_node``) is now served by ``by_node``
    (written by the leader's sweep, in its transaction)."""

    type: Literal["callback_adopted"] = "callback_adopted"
    from_node: str
    by_node: str


class CallbackDone(_Event):
    """An agent took the callback task and the caller was dialled."""

    type: Literal["callback_done"] = "callback_done"
    agent_id: str
    number: str
    outcome: str  # answered, no_answer, busy, failed...
    talk_s: float = 0.0


# -- recording ----------------------------------------------------------------------------------
class RecordingStarted(_Event):
    type: Literal["recording_started"] = "recording_started"
    file: str  # relative to the recordings folder


class RecordingSaved(_Event):
    type: Literal["recording_saved"] = "recording_saved"
    file: str
    duration_s: float


class RecordingFailed(_Event):
    type: Literal["recording_failed"] = "recording_failed"
    reason: str


class RecordingPaused(_Event):
    """Audio stopped being kept (silence in its place): a sensitive node is collecting."""

    type: Literal["recording_paused"] = "recording_paused"
    reason: str
    node: str | None = None


class RecordingResumed(_Event):
    type: Literal["recording_resumed"] = "recording_resumed"


class SupervisorJoined(_Event):
    """A supervisor joined a call with an agent: listen, whisper (to the agent) or barge."""

    type: Literal["supervisor_joined"] = "supervisor_joined"
    supervisor: str
    mode: Literal["listen", "whisper", "barge"]
    agent_id: str


class SupervisorMode(_Event):
    type: Literal["supervisor_mode"] = "supervisor_mode"
    supervisor: str
    mode: Literal["listen", "whisper", "barge"]
    previous: Literal["listen", "whisper", "barge"]


class SupervisorLeft(_Event):
    """The supervisor's session ended: they left, their leg dropped, or the talk ended."""

    type: Literal["supervisor_left"] = "supervisor_left"
    supervisor: str
    mode: Literal["listen", "whisper", "barge"]
    reason: str
    supervised_s: float


CallEvent = Annotated[
    CallStarted | CallEnded | CallError | Hangup | LocaleChanged | DtmfPressed
    | TranscriptHeard | Listening | NoInput | BargeIn | AsrGrammarRejected
    | AsrWorkerRestarted | SpeechUnavailable | IntentDetected | SentimentScored
    | EntitiesFound | PromptPlayed | SpeechFailed | TurnLatency | FlowStep | NodeEntered
    | WebhookCalled | CrmResult | TransferRequested | HandoffRequested | QueuePosition
    | QueueTimeout | RecordingStarted | RecordingSaved | RecordingFailed | RecordingPaused
    | RecordingResumed | RoutingDecided | QueueJoinedEvent | QueueLeftEvent | OverflowEvent
    | QueueExitEvent | OfferEvent | RingEnded | AnnouncedPosition | AgentConnected
    | AgentDisconnected | HoldChanged | MuteChanged | AgentTransfer | HandBack | WrapUp
    | CallbackOffered | CallbackQueued | CallbackAdopted | CallbackDone | SupervisorJoined
    | SupervisorMode | SupervisorLeft,
    Field(discriminator="type"),
]
EVENTS: TypeAdapter[CallEvent] = TypeAdapter(CallEvent)
EVENT_TYPES: frozenset[str] = frozenset(
    t.model_fields["type"].default for t in CallEvent.__origin__.__args__  # type: ignore[attr-defined]
)


def parse_event(data: dict[str, Any]) -> CallEvent:
    """A stored or received event (with ``type``) back to its model; ``ValueError`` if bad.

    Envelope keys (``call_id``, ``seq``, ``at``) are ignored.
    """
    body = {k: v for k, v in data.items() if k not in ("call_id", "seq", "at")}
    return EVENTS.validate_python(body)


def event_payload(event: CallEvent) -> dict[str, Any]:
    """The JSON-able fields of ``event`` (``type`` included), defaults left out."""
    return event.model_dump(mode="json", exclude_defaults=True) | {"type": event.type}


# -- views ------------------------------------------------------------------------------------
def transcript_turns(events: list[tuple[int, CallEvent]]) -> list[TranscriptTurn]:
    """The conversation from ``(seq, event)`` pairs: bot prompts and final speech."""
    turns: list[TranscriptTurn] = []
    for seq, event in events:
        if isinstance(event, PromptPlayed) and event.text:
            turns.append(TranscriptTurn(speaker="bot", text=event.display or event.text,
                                        seq=seq))
        elif isinstance(event, TranscriptHeard) and event.is_final and event.text:
            turns.append(TranscriptTurn(
                speaker=event.speaker, text=event.text, seq=seq, confidence=event.confidence,
                heard="unsure" if event.rejected else "sure",
            ))
    return turns


def flow_path(events: list[tuple[int, CallEvent]]) -> list[str]:
    return [e.node for _, e in events if isinstance(e, NodeEntered)]
