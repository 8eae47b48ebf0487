"""The ASR worker process: VAD, endpointing and Vosk decoding for the streams pinned to it.

The zygote runs ``preload`` (loads every configured Vosk model once; the forked workers share
those pages), then each worker runs ``main``: one thread, one ``UtteranceDecoder`` per stream
(the same code the thread decoder runs), one pool of warm recognizers per (model, rate).
VAD and endpointing sit here, beside the decoder: they need the same 20 ms frames and the
decoder's utterance state, and the loop side then only copies each chunk into the socket.

Frames in (``s`` = stream id, ``q`` = chunk sequence number, ``k`` = samples dropped before
this point, ``t`` = the chunk's media time in ms):
  ``{"op": "open", "s", "model", "locale", "rate", "vad", "silence_s", "grammar_silence_s",
  "grammar": [..] | null, "unk", "offset", "ack_every"}``, ``{"op": "a", "s", "q", "t", "k"}``
  + PCM, ``{"op": "g", "s", "grammar", "unk"}``, ``{"op": "end", "s", "k"}``,
  ``{"op": "close", "s"}``.
Frames out: ``{"op": "r", "s", "q": last chunk processed, "f": first chunk of the decoded
batch, "n": chunks in it, "d": audio went to Vosk, "ev": [events], "end": bool}`` (sent when
there are events, audio was decoded, at the end, or every ``ack_every`` chunks), and
``{"op": "err", "s", "message"}`` when a stream fails.

Scheduling: every stream with a backlog gets one batch (at most ``MAX_BATCH_CHUNKS``) per
round, new input is read between streams, and the worker sleeps only when no stream has work.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import vosk

from app.asr.decoder import DecoderConfig, RecognizerPool, UtteranceDecoder
from app.asr.grammar import Grammar
from app.events import AudioChunk
from app.workers.child import Channel, channel
from app.workers.protocol import Frame

MAX_BATCH_CHUNKS = 10  # at most 200 ms of 20 ms chunks per decoder call (bounds latency)
MODELS: dict[str, vosk.Model] = {}  # model name -> model, loaded once in the zygote


def preload(args: dict[str, Any]) -> dict[str, Any]:
    """In the zygote: load every model in ``args["models"]`` (name -> directory)."""
    vosk.SetLogLevel(-1)
    failed: dict[str, str] = {}
    for name, path in dict(args.get("models", {})).items():
        try:
            MODELS[name] = vosk.Model(str(path))
        except Exception as exc:  # its streams are refused at open ("not loaded")
            failed[name] = repr(exc)
    return {"models": sorted(MODELS), "failed": failed}


@dataclass
class _Stream:
    sid: int
    rate: int
    decoder: UtteranceDecoder
    ack_every: int
    backlog: deque[tuple[int, AudioChunk, int]] = field(default_factory=deque)
    prepared: bool = False
    end_requested: bool = False
    grammar_pending: tuple[Grammar | None] | None = None
    processed: int = 0  # last chunk number decoded (or skipped as silence)
    acked: int = 0

    @property
    def has_work(self) -> bool:
        return bool(self.backlog) or self.end_requested


class AsrWorker:
    def __init__(self, chan: Channel) -> None:
        self.chan = chan
        self.streams: dict[int, _Stream] = {}
        self.pools: dict[tuple[str, int, int], RecognizerPool] = {}

    def run(self) -> None:
        while True:
            if any(s.has_work for s in self.streams.values()):
                frames = self.chan.drain()
            else:
                first = self.chan.recv()
                frames = [] if first is None else [first, *self.chan.drain()]
            for frame in frames:
                self.dispatch(frame)
            if self.chan.eof:
                return
            self.round()

    def round(self) -> None:
        for sid in list(self.streams):
            stream = self.streams.get(sid)
            if stream is not None and stream.has_work:
                self.step(stream)
                for frame in self.chan.drain():
                    self.dispatch(frame)

    # -- input -----------------------------------------------------------------------------------
    def dispatch(self, frame: Frame) -> None:
        h = frame.header
        op, sid = h.get("op"), int(h.get("s", -1))
        if op == "open":
            self._open(sid, h)
            return
        stream = self.streams.get(sid)
        if stream is None:
            return  # closed or failed: late frames are dropped
        if op == "a":
            self._skip(stream, int(h.get("k", 0)))
            chunk = AudioChunk(frame.payload, stream.rate, int(h.get("t", 0)))
            stream.backlog.append((int(h["q"]), chunk, 0))
        elif op == "g":
            stream.grammar_pending = (_grammar(h),)
        elif op == "end":
            self._skip(stream, int(h.get("k", 0)))
            stream.end_requested = True
        elif op == "close":
            del self.streams[sid]
            stream.decoder.release()

    def _open(self, sid: int, h: dict[str, Any]) -> None:
        name, rate = str(h["model"]), int(h["rate"])
        model = MODELS.get(name)
        if model is None:
            self.chan.send({"op": "err", "s": sid, "message": f"model {name} is not loaded in "
                            f"the ASR worker (loaded: {', '.join(sorted(MODELS)) or 'none'})"})
            return
        nbest = int(h.get("nbest", 0))
        cfg = DecoderConfig(
            model=model, locale=str(h["locale"]), sample_rate_hz=rate,
            vad_aggressiveness=int(h["vad"]), silence_timeout_s=float(h["silence_s"]),
            grammar_silence_timeout_s=h.get("grammar_silence_s"),
            pool=self.pools.setdefault((name, rate, nbest),
                                       RecognizerPool(model, rate, max_alternatives=nbest)),
            max_alternatives=nbest,
        )
        decoder = UtteranceDecoder(cfg, _grammar(h), int(h.get("offset", 0)))
        self.streams[sid] = _Stream(sid, rate, decoder, max(1, int(h.get("ack_every", 25))))

    @staticmethod
    def _skip(stream: _Stream, samples: int) -> None:
        if not samples:
            return
        if stream.backlog:
            seq, chunk, gap = stream.backlog[-1]
            stream.backlog[-1] = (seq, chunk, gap + samples)
        else:
            stream.decoder.skip(samples)

    # -- decoding --------------------------------------------------------------------------------
    def step(self, stream: _Stream) -> None:
        n = min(len(stream.backlog), MAX_BATCH_CHUNKS)
        items = [stream.backlog.popleft() for _ in range(n)]
        end = stream.end_requested and not stream.backlog
        decoder = stream.decoder
        try:
            if stream.grammar_pending is not None:
                decoder.grammar = stream.grammar_pending[0]
                stream.grammar_pending = None
            if not stream.prepared:
                decoder.prepare()
                stream.prepared = True
            events = decoder.process([(chunk, gap) for _, chunk, gap in items], end)
        except Exception as exc:  # this stream fails; the worker and its other streams go on
            self.streams.pop(stream.sid, None)
            decoder.release()
            self.chan.send({"op": "err", "s": stream.sid,
                            "message": f"speech recognition failed: {exc!r}"})
            return
        if items:
            stream.processed = items[-1][0]
        decoded = decoder.decoded_audio and bool(items)
        if events or end or decoded or stream.processed - stream.acked >= stream.ack_every:
            self.chan.send({
                "op": "r", "s": stream.sid, "q": stream.processed,
                "f": items[0][0] if items else stream.processed, "n": len(items),
                "d": decoded, "ev": [e.model_dump() for e in events], "end": end,
            })
            stream.acked = stream.processed
        if end:
            del self.streams[stream.sid]
            decoder.release()


def _grammar(h: dict[str, Any]) -> Grammar | None:
    phrases = h.get("grammar")
    if phrases is None:
        return None
    return Grammar(tuple(str(p) for p in phrases), bool(h.get("unk", False)))


def main() -> None:
    chan = channel()
    chan.send({"ready": True, "pid": os.getpid(), "models": sorted(MODELS)})
    AsrWorker(chan).run()
