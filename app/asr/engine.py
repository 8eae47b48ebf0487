"""AsrEngine: the process-wide Vosk models plus the decoders every stream runs on.

Wiring (main.py / lifespan): ``engine = AsrEngine(settings, ModelRegistry(settings.models_dir))``,
``problems = await engine.aload()`` (a locale whose model is missing is reported, never fatal:
the server then runs DTMF-only for it), ``engine.stream(locale, 16000, call_id=...)`` per call,
``await engine.aclose()`` on shutdown.

``settings.asr_decoder`` picks where decoding runs: ``processes`` (default) in
``asr_processes`` worker processes (``app.asr.remote``; the models are loaded once more, in the
zygote the workers are forked from), ``threads`` on a pool of ``asr_workers`` threads in this
process (``app.asr.stream``). Either way this process keeps the models too: grammar phrases
are checked against their vocabulary on the loop, synchronously.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import vosk

from app.asr.decoder import DecoderConfig, RecognizerPool, UtteranceDecoder
from app.asr.errors import AsrError, LocaleUnavailableError
from app.asr.grammar import Grammar, compile_grammar
from app.asr.registry import ModelRegistry
from app.asr.remote import RemoteDecoders, RemoteStream, StreamSpec
from app.asr.stream import RecognizerStream
from app.asr.vad import VAD_RATES_HZ
from app.log import get_logger
from app.settings import Settings


class AsrEngine:
    def __init__(self, settings: Settings, registry: ModelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self._models: dict[str, tuple[str, vosk.Model]] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=settings.asr_workers, thread_name_prefix="asr-decode"
        )
        self._streams: weakref.WeakSet[RecognizerStream | RemoteStream] = weakref.WeakSet()
        self._pools: dict[tuple[str, int], RecognizerPool] = {}
        self._remote: RemoteDecoders | None = None
        self._log = get_logger(component="asr")

    @property
    def remote(self) -> RemoteDecoders | None:
        """The worker processes (``asr_decoder=processes``, once loaded)."""
        return self._remote

    # -- models --------------------------------------------------------------------------------
    def load(self) -> dict[str, str]:
        """Load every ``settings.asr_models`` entry (blocking). Returns locale -> problem.

        With ``asr_decoder=processes`` the worker processes' zygote loads its copy of the
        models at the same time as this process loads its own (two cores, half the wait).
        """
        early = None
        if self.settings.asr_decoder == "processes" and self._remote is None:
            early = self._start_workers_early()
        problems: dict[str, str] = {}
        for locale, name in self.settings.asr_models.items():
            try:
                model = self.registry.get(name)
            except AsrError as exc:
                problems[locale] = str(exc)
                self._log.warning("asr_model_unavailable", locale=locale, model=name,
                                  reason=str(exc))
                continue
            with self._lock:
                self._models[locale] = (name, model)
            self._log.info("asr_model_loaded", locale=locale, model=name)
        if early is not None:
            problems.update(self._finish_workers(*early))
        return problems

    def _start_workers_early(self) -> tuple[RemoteDecoders, threading.Thread,
                                            list[Exception]] | None:
        paths: dict[str, str] = {}
        for name in set(self.settings.asr_models.values()):
            try:
                info = self.registry.info(name)
            except AsrError:
                continue  # reported by the in-process load
            if info.problem is None:
                paths[name] = str(info.path.resolve())
        if not paths:
            return None
        remote = RemoteDecoders("asr", self.settings.asr_processes,
                                self.settings.asr_worker_timeout_s, paths)
        errors: list[Exception] = []

        def start() -> None:
            try:
                remote.start()
            except Exception as exc:  # reported by _finish_workers
                errors.append(exc)

        thread = threading.Thread(target=start, name="asr-workers-start", daemon=True)
        thread.start()
        return remote, thread, errors

    def _finish_workers(self, remote: RemoteDecoders, thread: threading.Thread,
                        errors: list[Exception]) -> dict[str, str]:
        """Wait for the workers; if they cannot start, no locale has speech input."""
        thread.join()
        if errors or not self._models:
            remote.close()
        if errors:
            why = f"speech recognition workers did not start: {errors[0]}"
            self._log.error("asr_workers_unavailable", reason=why)
            with self._lock:
                failed = {locale: why for locale in self._models}
                self._models.clear()
            return failed
        if self._models:
            self._remote = remote
            self._log.info("asr_workers_started", processes=self.settings.asr_processes,
                           pids=remote.pool.pids)
        return {}

    async def aload(self) -> dict[str, str]:
        """``load`` on the decoder pool, so the event loop keeps running meanwhile."""
        return await asyncio.wrap_future(self._executor.submit(self.load))

    def available_locales(self) -> set[str]:
        with self._lock:
            return set(self._models)

    def _model(self, locale: str) -> tuple[str, vosk.Model]:
        with self._lock:
            found = self._models.get(locale)
        if found is None:
            configured = self.settings.asr_models.get(locale)
            why = (f"model {configured} is not loaded" if configured
                   else "no model configured in asr_models")
            raise LocaleUnavailableError(f"no speech recognition for locale {locale!r}: {why}")
        return found

    def compile_grammar(self, locale: str, phrases: Sequence[str]) -> Grammar:
        """Check ``phrases`` against the locale's vocabulary (``GrammarVocabularyError``)."""
        name, model = self._model(locale)
        try:
            return compile_grammar(model, name, phrases)
        except AsrError as exc:
            self._log.warning("asr_grammar_rejected", locale=locale, reason=str(exc))
            raise

    # -- streams -------------------------------------------------------------------------------
    def stream(self, locale: str, sample_rate_hz: int, grammar: list[str] | None = None,
               call_id: str | None = None) -> RecognizerStream | RemoteStream:
        """A new per-call stream (must be called on the event loop)."""
        name, model = self._model(locale)
        if sample_rate_hz not in VAD_RATES_HZ:
            raise ValueError(f"unsupported sample rate {sample_rate_hz} Hz for speech input "
                             f"(use one of {', '.join(map(str, VAD_RATES_HZ))})")
        compiled = None if grammar is None else self.compile_grammar(locale, grammar)
        log = get_logger(call_id=call_id, component="asr", locale=locale)
        if self._remote is not None:
            spec = StreamSpec(
                model=name, locale=locale, sample_rate_hz=sample_rate_hz,
                vad_aggressiveness=self.settings.asr_vad_aggressiveness,
                silence_timeout_s=self.settings.asr_silence_timeout_s,
                grammar_silence_timeout_s=self.settings.asr_grammar_silence_timeout_s,
                max_queue_chunks=self.settings.asr_queue_max_chunks,
                max_alternatives=self.settings.asr_max_alternatives,
            )
            remote = self._remote.open(spec, compiled, partial(self.compile_grammar, locale), log)
            self._streams.add(remote)
            return remote
        cfg = DecoderConfig(
            model=model, locale=locale, sample_rate_hz=sample_rate_hz,
            vad_aggressiveness=self.settings.asr_vad_aggressiveness,
            silence_timeout_s=self.settings.asr_silence_timeout_s,
            grammar_silence_timeout_s=self.settings.asr_grammar_silence_timeout_s,
            pool=self._pools.setdefault(
                (name, sample_rate_hz),
                RecognizerPool(model, sample_rate_hz,
                               max_alternatives=self.settings.asr_max_alternatives)),
            max_alternatives=self.settings.asr_max_alternatives,
        )
        stream = RecognizerStream(
            decoder=UtteranceDecoder(cfg, compiled), executor=self._executor,
            compile_grammar=partial(self.compile_grammar, locale),
            sample_rate_hz=sample_rate_hz, max_queue_chunks=self.settings.asr_queue_max_chunks,
            log=log,
        )
        self._streams.add(stream)
        return stream

    async def aclose(self) -> None:
        """Close every open stream, then stop the pool (waiting off the loop)."""
        for stream in list(self._streams):
            await stream.aclose()
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Stop the worker processes and the decoder threads (blocking; close streams first)."""
        remote, self._remote = self._remote, None
        if remote is not None:
            remote.close()
        self._executor.shutdown(wait=True)
