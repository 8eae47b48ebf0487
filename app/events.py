"""The few typed values everything exchanges.

Audio travels as ``AudioChunk`` (a slotted dataclass: it is the hot path). Recognizer output,
understanding results and VAD edges are pydantic models with a ``type`` field. The entries of
a call's event log (the call record) are in ``app.record``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

SAMPLE_WIDTH_BYTES = 2
CALL_SAMPLE_RATE_HZ = 16_000
FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Signed 16-bit little-endian mono PCM, normally 20 ms long."""

    pcm: bytes
    sample_rate_hz: int
    media_ts_ms: int = 0

    @property
    def n_samples(self) -> int:
        return len(self.pcm) // SAMPLE_WIDTH_BYTES

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.n_samples / self.sample_rate_hz


def utc_now() -> datetime:
    return datetime.now(UTC)


class Word(BaseModel):
    word: str
    start_s: float
    end_s: float
    confidence: float


class Alternative(BaseModel):
    """One entry of a recognizer n-best list; ``confidence`` is its share (0..1)."""

    text: str
    confidence: float


class Transcript(BaseModel):
    type: Literal["transcript"] = "transcript"
    text: str
    is_final: bool
    locale: str = ""
    confidence: float = 0.0
    start_s: float = 0.0
    end_s: float = 0.0
    words: list[Word] = Field(default_factory=list)
    grammar: bool = False
    alternatives: list[Alternative] = Field(default_factory=list)  # n-best, best first


class Dtmf(BaseModel):
    type: Literal["dtmf"] = "dtmf"
    digit: str
    media_ts_ms: int = 0
    duration_ms: int = 0


class IntentCandidate(BaseModel):
    intent: str
    confidence: float


IntentReason = Literal[
    "ok", "low_confidence", "ambiguous", "empty", "unknown_locale", "model_unavailable",
    "too_long",
]


class IntentResult(BaseModel):
    type: Literal["intent"] = "intent"
    text: str
    locale: str
    intent: str | None
    confidence: float
    ranking: list[IntentCandidate] = Field(default_factory=list)
    reason: IntentReason = "ok"
    # which recognizer alternative (0 = best) the intent came from; None: a single text
    alternative_index: int | None = None


EntityKind = Literal["digits", "phone", "date", "datetime", "time", "money"]


class Entity(BaseModel):
    kind: EntityKind
    value: str  # canonical: digits "4567", phone E.164, date ISO 8601, money "12.50 CNY"
    text: str  # the span as heard
    start: int = 0
    end: int = 0


SentimentLabel = Literal["negative", "neutral", "positive"]


class Sentiment(BaseModel):
    type: Literal["sentiment"] = "sentiment"
    score: float = Field(ge=-1.0, le=1.0)
    label: SentimentLabel


class SpeechActivity(BaseModel):
    """VAD edges from a recognizer stream: the caller started or stopped speaking."""

    type: Literal["speech_start", "speech_end"]
    media_ts_ms: int = 0


class AsrWorkerRestarted(BaseModel):
    """A recognizer stream's worker process died and a new one took the stream over.

    The audio that was with the dead worker is lost (``gap_ms``); an utterance it was hearing
    was ended (a ``speech_end`` comes first). Decoding goes on from ``media_ts_ms``.
    """

    type: Literal["asr_worker_restarted"] = "asr_worker_restarted"
    media_ts_ms: int = 0
    gap_ms: int = 0
    worker: int = 0  # the worker slot that was replaced
