"""The thread side of a recognizer stream: VAD gating, endpointing and Vosk decoding.

One ``UtteranceDecoder`` per stream, only ever touched by one pool thread at a time.
Silence outside an utterance is not decoded (only a short pre-roll is kept): the VAD sees
every frame, Vosk sees speech plus the trailing silence that ends it. Consecutive chunks are
decoded in one ``AcceptWaveform`` call per batch, which is what lets a small pool keep up
with many streams. Times are seconds from the start of the stream.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import vosk

from app.asr.grammar import Grammar, score_result
from app.asr.vad import FrameVad
from app.events import (
    SAMPLE_WIDTH_BYTES,
    Alternative,
    AudioChunk,
    SpeechActivity,
    Transcript,
    Word,
)

START_WINDOW_FRAMES = 5  # speech starts when START_VOICED of the last 5 chunks are voiced
START_VOICED = 4
PREROLL_S = 0.3

AsrEvent = Transcript | SpeechActivity


@dataclass(slots=True)
class DecoderConfig:
    model: vosk.Model
    locale: str
    sample_rate_hz: int
    vad_aggressiveness: int
    silence_timeout_s: float
    pool: RecognizerPool | None = None
    # grammar mode: once the partial is a whole listed phrase, a shorter pause ends the turn
    grammar_silence_timeout_s: float | None = None  # None: one private free recognizer per stream
    max_alternatives: int = 0  # free-form n-best size (0: best string only)


@dataclass(slots=True)
class _Timeline:
    """Maps a recognizer's own clock (audio fed to it) to the stream's clock."""

    rec: vosk.KaldiRecognizer
    fed_samples: int = 0
    segments: list[tuple[float, float]] = field(default_factory=list)  # (rec_s, offset_s)

    def mark(self, rec_s: float, stream_s: float) -> None:
        offset = stream_s - rec_s
        if not self.segments or abs(self.segments[-1][1] - offset) > 1e-6:
            self.segments.append((rec_s, offset))

    def to_stream(self, rec_s: float) -> float:
        offset = self.segments[0][1] if self.segments else 0.0
        for start, off in self.segments:
            if start <= rec_s + 1e-6:
                offset = off
        return rec_s + offset

    def forget_before_last(self) -> None:
        del self.segments[:-1]


class RecognizerPool:
    """Warm free-form recognizers of one (model, rate), shared by every stream's utterances.

    A Vosk recognizer gets much cheaper after its first seconds (its on-the-fly composed
    graph is cached inside it: speech RTF ~0.66 cold vs ~0.3 warm here), and a stream only
    needs one while the caller speaks. So utterances borrow a warm recognizer and give it
    back after ``FinalResult()``, which resets the feature pipeline (no adaptation state
    leaks from one caller to the next). Thread-safe; LIFO so the warmest is reused first.
    """

    def __init__(self, model: vosk.Model, sample_rate_hz: int, max_idle: int = 64,
                 max_alternatives: int = 0) -> None:
        self._model = model
        self._rate = sample_rate_hz
        self._max_idle = max_idle
        self._max_alternatives = max_alternatives
        self._idle: list[_Timeline] = []
        self._lock = threading.Lock()

    def checkout(self) -> _Timeline:
        with self._lock:
            if self._idle:
                tl = self._idle.pop()
                tl.segments.clear()
                return tl
        rec = vosk.KaldiRecognizer(self._model, self._rate)
        rec.SetWords(True)
        if self._max_alternatives:
            rec.SetMaxAlternatives(self._max_alternatives)
        return _Timeline(rec)

    def checkin(self, tl: _Timeline) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(tl)

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)


class UtteranceDecoder:
    """``offset_samples``: where this decoder's audio starts on the stream's clock (a stream
    resumed on a new worker goes on with its own times)."""

    def __init__(self, cfg: DecoderConfig, grammar: Grammar | None,
                 offset_samples: int = 0) -> None:
        self.cfg = cfg
        self.grammar = grammar
        self._rate = cfg.sample_rate_hz
        self._vad = FrameVad(cfg.sample_rate_hz, cfg.vad_aggressiveness)
        self._free: _Timeline | None = None
        self._gram: tuple[Grammar, _Timeline] | None = None
        self._active: _Timeline | None = None
        self._pending = bytearray()
        self._window: deque[tuple[bool, int]] = deque(maxlen=START_WINDOW_FRAMES)
        self._preroll: deque[tuple[AudioChunk, float]] = deque()
        self._pos_samples = offset_samples
        self._silence_s = 0.0
        self._last_partial = ""
        self._utt_start_s = offset_samples / cfg.sample_rate_hz
        self._utt_finals = 0
        self._last_end_s = offset_samples / cfg.sample_rate_hz
        self.decoded_audio = False  # whether the last batch fed audio to Vosk

    @property
    def in_speech(self) -> bool:
        return self._active is not None

    def release(self) -> None:
        """Drop the recognizers (tens of MB each) once the stream is closed."""
        self._free = self._gram = self._active = None
        self._pending.clear()
        self._preroll.clear()

    def skip(self, samples: int) -> None:
        """``samples`` of the stream were lost before the next chunk (its clock moves on)."""
        self._pos_samples += samples

    def prepare(self) -> None:
        """Have a recognizer ready before the first utterance (creating one takes ~0.1 s)."""
        if self.cfg.pool is not None:
            self.cfg.pool.checkin(self.cfg.pool.checkout())
        else:
            self._recognizer()

    def process(self, batch: list[tuple[AudioChunk, int]], end: bool) -> list[AsrEvent]:
        """Run VAD + decoding over ``batch`` ((chunk, samples lost after it)); ``end`` flushes."""
        events: list[AsrEvent] = []
        self.decoded_audio = False
        for chunk, gap_samples in batch:
            self._chunk(chunk, events)
            self._pos_samples += gap_samples
        if self._active is not None:
            if end:
                self._end_utterance(events, self._pos_samples / self._rate)
            else:
                self._flush_partial(events)
        return events

    # -- per chunk ---------------------------------------------------------------------------
    def _chunk(self, chunk: AudioChunk, events: list[AsrEvent]) -> None:
        start_s = self._pos_samples / self._rate
        self._pos_samples += chunk.n_samples
        voiced = self._vad.voiced(chunk.pcm)
        if self._active is None:
            self._idle_chunk(chunk, start_s, voiced, events)
            return
        self._feed(chunk.pcm, start_s)
        self._silence_s = 0.0 if voiced else self._silence_s + chunk.n_samples / self._rate
        if self._silence_s >= self._silence_limit_s():
            self._end_utterance(events, self._pos_samples / self._rate - self._silence_s,
                                chunk.media_ts_ms + chunk.duration_ms - 1000 * self._silence_s)

    def _silence_limit_s(self) -> float:
        """The endpointing pause: shorter when a listed phrase has been heard whole."""
        short = self.cfg.grammar_silence_timeout_s
        if short is not None and self.grammar is not None and (
            self._last_partial in self.grammar.phrases
        ):
            return min(short, self.cfg.silence_timeout_s)
        return self.cfg.silence_timeout_s

    def _idle_chunk(self, chunk: AudioChunk, start_s: float, voiced: bool,
                    events: list[AsrEvent]) -> None:
        self._preroll.append((chunk, start_s))
        while self._preroll and start_s - self._preroll[0][1] > PREROLL_S:
            self._preroll.popleft()
        self._window.append((voiced, chunk.media_ts_ms))
        if sum(v for v, _ in self._window) < START_VOICED:
            return
        first_ts = next(ts for v, ts in self._window if v)
        events.append(SpeechActivity(type="speech_start", media_ts_ms=first_ts))
        self._window.clear()
        self._active = self._recognizer()
        self._utt_start_s = self._preroll[0][1]
        self._utt_finals = 0
        self._silence_s = 0.0
        for pre, pre_start in self._preroll:
            self._feed(pre.pcm, pre_start)
        self._preroll.clear()

    # -- decoding ----------------------------------------------------------------------------
    def _recognizer(self) -> _Timeline:
        if self.grammar is None:
            if self._free is None:
                if self.cfg.pool is not None:
                    self._free = self.cfg.pool.checkout()
                else:
                    rec = vosk.KaldiRecognizer(self.cfg.model, self._rate)
                    rec.SetWords(True)
                    if self.cfg.max_alternatives:
                        rec.SetMaxAlternatives(self.cfg.max_alternatives)
                    self._free = _Timeline(rec)
            return self._free
        if self._gram is None or self._gram[0] != self.grammar:
            rec = vosk.KaldiRecognizer(self.cfg.model, self._rate, self.grammar.to_json())
            rec.SetWords(True)
            self._gram = (self.grammar, _Timeline(rec))
        return self._gram[1]

    def _feed(self, pcm: bytes, start_s: float) -> None:
        tl = self._active
        assert tl is not None
        rec_s = (tl.fed_samples + len(self._pending) // SAMPLE_WIDTH_BYTES) / self._rate
        tl.mark(rec_s, start_s)
        self._pending += pcm

    def _flush(self) -> bool:
        tl = self._active
        if tl is None or not self._pending:
            return False
        accepted = bool(tl.rec.AcceptWaveform(bytes(self._pending)))
        tl.fed_samples += len(self._pending) // SAMPLE_WIDTH_BYTES
        self._pending.clear()
        self.decoded_audio = True
        return accepted

    def _flush_partial(self, events: list[AsrEvent]) -> None:
        tl = self._active
        assert tl is not None
        if self._flush():
            self._final(tl, json.loads(tl.rec.Result()), events)
            return
        text = str(json.loads(tl.rec.PartialResult()).get("partial", ""))
        if text and text != self._last_partial:
            self._last_partial = text
            events.append(Transcript(
                text=text, is_final=False, locale=self.cfg.locale, grammar=self.grammar is not None,
                start_s=max(self._utt_start_s, self._last_end_s),
                end_s=self._pos_samples / self._rate,
            ))

    def _end_utterance(self, events: list[AsrEvent], end_s: float,
                       media_ts_ms: float | None = None) -> None:
        tl = self._active
        assert tl is not None
        if self._flush():
            self._final(tl, json.loads(tl.rec.Result()), events)
        self._final(tl, json.loads(tl.rec.FinalResult()), events)
        if self._utt_finals == 0 and self.grammar is not None:
            start = max(self._utt_start_s, self._last_end_s)
            events.append(Transcript(text="", is_final=True, locale=self.cfg.locale, grammar=True,
                                     confidence=0.0, start_s=start, end_s=max(start, end_s)))
            self._last_end_s = max(start, end_s)
        ts = int(media_ts_ms) if media_ts_ms is not None else int(1000 * end_s)
        events.append(SpeechActivity(type="speech_end", media_ts_ms=ts))
        tl.forget_before_last()
        if tl is self._free and self.cfg.pool is not None:
            self.cfg.pool.checkin(tl)  # finalized: safe for another caller
            self._free = None
        self._active = None
        self._last_partial = ""
        self._silence_s = 0.0

    def _final(self, tl: _Timeline, result: dict[str, Any], events: list[AsrEvent]) -> None:
        alternatives = nbest(result)
        if "alternatives" in result:  # n-best mode: the best alternative is the result
            best = (result["alternatives"] or [{}])[0]
            result = {"text": best.get("text", ""), "result": best.get("result", [])}
        raw_words: list[dict[str, Any]] = list(result.get("result", []))
        self._last_partial = ""
        if not raw_words:
            return
        words = self._words(tl, raw_words)
        if self.grammar is not None:
            score = score_result(self.grammar, raw_words)
            text, conf = score.text, score.confidence
        else:
            text = str(result.get("text", ""))
            conf = sum(w.confidence for w in words) / len(words)
            if alternatives:  # words carry no confidence in n-best mode
                conf = alternatives[0].confidence
        self._utt_finals += 1
        self._last_end_s = words[-1].end_s
        events.append(Transcript(
            text=text, is_final=True, locale=self.cfg.locale, confidence=round(conf, 4),
            start_s=words[0].start_s, end_s=words[-1].end_s, words=words,
            grammar=self.grammar is not None, alternatives=alternatives,
        ))

    def _words(self, tl: _Timeline, raw: list[dict[str, Any]]) -> list[Word]:
        out: list[Word] = []
        floor = self._last_end_s
        for w in raw:
            start = max(floor, round(tl.to_stream(float(w.get("start", 0.0))), 3))
            end = max(start, round(tl.to_stream(float(w.get("end", 0.0))), 3))
            out.append(Word(word=str(w.get("word", "")), start_s=start, end_s=end,
                            confidence=round(float(w.get("conf", 0.0)), 4)))
            floor = end
        return out


def nbest(result: dict[str, Any]) -> list[Alternative]:
    """Vosk n-best (``{"alternatives": [{"text", "confidence"}, ...]}``, best first) as
    ``Alternative``s whose confidence is a share: softmax of Vosk's lattice scores
    (log-likelihoods) over the list. Empty texts are left out; no n-best: ``[]``."""
    raw = [a for a in result.get("alternatives", []) if str(a.get("text", "")).strip()]
    if not raw:
        return []
    scores = [float(a.get("confidence", 0.0)) for a in raw]
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [Alternative(text=str(a["text"]), confidence=round(w / total, 4))
            for a, w in zip(raw, weights, strict=True)]
