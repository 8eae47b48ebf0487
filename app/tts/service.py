"""Speech synthesis for calls: text or a recorded WAV in, call-rate PCM and 20 ms chunks out.

``TtsService`` is created once per process (``main.py`` lifespan) and shared by every call.
Text is planned into pieces: split into language runs (``app.tts.runs``: a bilingual greeting
is spoken by two voices), each run normalized for its locale (``app.tts.normalize``: phone
numbers digit by digit, dates, money) and cut into sentences. Pieces are rendered in order,
one ahead of the one playing, so a long text never floods the worker queue and a stream
starts after its first sentence. Each piece is one cache entry, unless the text carries
caller data (``cache=False``: a read-back card number is never written to disk).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.events import FRAME_MS, SAMPLE_WIDTH_BYTES, AudioChunk
from app.log import get_logger
from app.media.audio import AudioFormatError, Pcm, frames, read_wav, resample, rms_dbfs
from app.settings import Settings
from app.tts.cache import PromptCache, cache_key
from app.tts.errors import TtsError
from app.tts.normalize import normalize
from app.tts.pool import DEFAULT_WORKER_ENTRY, PoolStats, WorkerPool
from app.tts.recordings import RecordedPrompts
from app.tts.runs import split_runs
from app.tts.text import check_text, check_voice_can_read, speakable, split_segments

MIN_RATE_HZ, MAX_RATE_HZ = 8_000, 48_000
SILENT_DBFS = -60.0  # a render quieter than this is "the voice could not speak it"
SILENT_RENDER_TRIES = 3


@dataclass(frozen=True, slots=True)
class Piece:
    """One sentence of one language run, normalized, with the voice that speaks it."""

    text: str
    voice: str
    locale: str


@dataclass
class TtsStats:
    cache_hits: int = 0
    cache_misses: int = 0
    corrupt_entries: int = 0
    prompt_conversions: int = 0
    recorded_prompts: int = 0  # texts said by an uploaded recording instead of the voice
    silent_renders: int = 0
    uncached_renders: int = 0  # sentences with caller data, rendered and never stored


def resolve_voice(configured: str, voices: list[dict[str, Any]]) -> str | None:
    """The name espeak-ng is given for a configured voice, or ``None`` if not installed.

    pyttsx3 reports voice ids lowercased with their folder ("sit/cmn-latn-pinyin"), while the
    file is "sit/cmn-Latn-pinyin"; given the mixed-case path pyttsx3 writes no audio at all,
    and an unknown name silently falls back to English. So the configured value is matched
    (case-insensitively) against each voice's languages, id, file name and display name, and
    espeak-ng is given the lowercased file name, which it matches case-insensitively.
    """
    want = configured.strip().lower()
    for voice in voices:
        vid = str(voice.get("id", "")).lower()
        names = {vid, vid.rsplit("/", 1)[-1], str(voice.get("name", "")).lower()}
        names.update(str(lang).lower() for lang in voice.get("languages", []))
        if want in names:
            langs = [str(lang).lower() for lang in voice.get("languages", [])]
            return want if want in langs else vid.rsplit("/", 1)[-1]
    return None


def check_rate(sample_rate_hz: int) -> int:
    if not MIN_RATE_HZ <= sample_rate_hz <= MAX_RATE_HZ:
        raise ValueError(
            f"sample rate {sample_rate_hz} Hz out of range {MIN_RATE_HZ}..{MAX_RATE_HZ} Hz"
        )
    return sample_rate_hz


class TtsService:
    def __init__(self, settings: Settings, *, worker_entry: str = DEFAULT_WORKER_ENTRY) -> None:
        self.settings = settings
        self.rate_wpm = settings.tts_rate_wpm
        self.cache = PromptCache(settings.tts_cache_dir)
        self.pool = WorkerPool(
            size=settings.tts_workers, timeout_s=settings.tts_timeout_s,
            queue_max=settings.tts_queue_max, entry=worker_entry,
        )
        self.stats = TtsStats()
        self.voices: dict[str, str] = {}  # locale -> espeak-ng voice name
        self.missing_voices: dict[str, str] = {}  # locale -> configured voice not installed
        self._prompts: dict[tuple[str, int, int, int], Pcm] = {}
        self.recordings = RecordedPrompts(settings.data_dir / "prompt-recordings")

    @property
    def worker_stats(self) -> PoolStats:
        return self.pool.stats

    @property
    def worker_pids(self) -> list[int | None]:
        return self.pool.pids

    async def start(self) -> None:
        """Start the workers and check every configured voice is installed."""
        await self.pool.start()
        for locale, configured in self.settings.tts_voices.items():
            name = resolve_voice(configured, self.pool.voices)
            if name is None:
                self.missing_voices[locale] = configured
                get_logger().error("tts_voice_missing", locale=locale, voice=configured)
            else:
                self.voices[locale] = name
        get_logger().info("tts_ready", voices=self.voices, workers=self.settings.tts_workers)

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def __aenter__(self) -> TtsService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def locale_key(self, locale: str) -> str:
        """The configured locale ``locale`` means ("zh", "zh-CN" and "zh_CN" all mean "zh")."""
        for key in (locale, locale.replace("_", "-").split("-")[0].lower()):
            if key in self.voices:
                return key
            if key in self.missing_voices:
                raise TtsError(
                    "voice_missing", f"voice {self.missing_voices[key]!r} for locale {key!r} "
                    "is not installed in espeak-ng (see: espeak-ng --voices)",
                )
        known = ", ".join(sorted(self.settings.tts_voices)) or "none"
        raise TtsError(
            "unknown_locale", f"no voice for locale {locale!r}; configured locales: {known} "
            "(settings tts_voices)",
        )

    def voice_for(self, locale: str) -> str:
        """The espeak-ng voice for ``locale``."""
        return self.voices[self.locale_key(locale)]

    def plan(self, text: str, locale: str) -> list[Piece]:
        """What is said, in order, by which voice; raises ``TtsError`` before any rendering."""
        key = self.locale_key(locale)
        cleaned = check_text(text)
        pieces: list[Piece] = []
        for run in split_runs(cleaned, key, self.voices):
            voice = self.voices[run.locale]
            for sentence in split_segments(normalize(run.text, run.locale)):
                if speakable(sentence):
                    check_voice_can_read(sentence, voice)
                    pieces.append(Piece(sentence, voice, run.locale))
        if not pieces:
            raise TtsError("unspeakable", f"nothing speakable in {text!r}")
        return pieces

    async def synthesize(
        self, text: str, locale: str, sample_rate_hz: int, *, cache: bool = True,
        recorded: bool = True,
    ) -> Pcm:
        """The whole utterance at ``sample_rate_hz`` (cached per sentence unless ``cache``
        is False; an uploaded recording of the text unless ``recorded`` is False)."""
        pcm, _ = await self._render_text(text, locale, sample_rate_hz, cache, recorded)
        return pcm

    async def stream(
        self, text: str, locale: str, sample_rate_hz: int, *, cache: bool = True
    ) -> AsyncGenerator[AudioChunk, None]:
        """20 ms chunks; the next sentence renders while this one plays.

        Close it when abandoning it early (``contextlib.aclosing``) so the prefetch stops.
        """
        check_rate(sample_rate_hz)
        recorded = await self.recorded(text, locale, sample_rate_hz) if cache else None
        if recorded is not None:
            for chunk in frames(recorded.data, sample_rate_hz):
                yield chunk
            return
        pieces = self.plan(text, locale)
        step = sample_rate_hz * FRAME_MS // 1000 * SAMPLE_WIDTH_BYTES
        rest, ts_ms = b"", 0
        async with aclosing(self._rendered(pieces, sample_rate_hz, cache)) as rendered:
            async for pcm, _ in rendered:
                buf = rest + pcm.data
                whole = len(buf) - len(buf) % step
                for chunk in frames(buf[:whole], sample_rate_hz, start_ms=ts_ms):
                    yield chunk
                    ts_ms += FRAME_MS
                rest = buf[whole:]
        for chunk in frames(rest, sample_rate_hz, start_ms=ts_ms):
            yield chunk

    async def _rendered(
        self, pieces: list[Piece], sample_rate_hz: int, cache: bool
    ) -> AsyncGenerator[tuple[Pcm, bool], None]:
        """Each piece's audio in order, the next one rendering while this one is used."""
        pending: asyncio.Task[tuple[Pcm, bool]] | None = None
        try:
            current = await self._segment(pieces[0], sample_rate_hz, cache)
            for i in range(len(pieces)):
                if i + 1 < len(pieces):
                    pending = asyncio.create_task(
                        self._segment(pieces[i + 1], sample_rate_hz, cache),
                        name="tts-prefetch",
                    )
                yield current
                if pending is not None:
                    current, pending = await pending, None
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def prompt_wav(self, path: Path, sample_rate_hz: int) -> Pcm:
        """A studio-recorded prompt, converted once to mono s16 at the call's rate."""
        check_rate(sample_rate_hz)
        try:
            key = await asyncio.to_thread(_prompt_key, path, sample_rate_hz)
        except OSError as exc:
            raise TtsError("bad_prompt", f"recorded prompt {path}: {exc.strerror}") from None
        cached = self._prompts.get(key)
        if cached is not None:
            return cached
        try:
            pcm = await asyncio.to_thread(_convert_wav, path, sample_rate_hz)
        except AudioFormatError as exc:
            raise TtsError("bad_prompt", f"recorded prompt {exc}") from None
        self.stats.prompt_conversions += 1
        self._prompts[key] = pcm
        return pcm

    async def recorded(self, text: str, locale: str, sample_rate_hz: int) -> Pcm | None:
        """The uploaded recording of exactly ``text`` in ``locale`` (``app.tts.recordings``)
        at ``sample_rate_hz``, or ``None`` when the text is to be synthesized."""
        key = self.locale_key(locale)
        try:
            path = await asyncio.to_thread(self.recordings.find, key, text)
        except (OSError, ValueError, TypeError) as exc:
            get_logger().warning("tts_recordings_unreadable", why=str(exc))
            return None
        if path is None:
            return None
        self.stats.recorded_prompts += 1
        return await self.prompt_wav(path, sample_rate_hz)

    async def prerender(self, items: list[tuple[str, str]], sample_rate_hz: int) -> int:
        """Render (text, locale) prompts into the cache; returns how many were not cached."""
        rendered = 0
        for text, locale in items:
            try:
                _, misses = await self._render_text(text, locale, sample_rate_hz)
            except TtsError as exc:
                raise TtsError(exc.reason, f"prompt {text!r} ({locale}): {exc}") from None
            rendered += misses > 0
        return rendered

    async def _render_text(
        self, text: str, locale: str, sample_rate_hz: int, cache: bool = True,
        recorded: bool = True,
    ) -> tuple[Pcm, int]:
        check_rate(sample_rate_hz)
        found = await self.recorded(text, locale, sample_rate_hz) if cache and recorded \
            else None
        if found is not None:
            return found, 0
        pieces = self.plan(text, locale)
        parts: list[bytes] = []
        misses = 0
        async with aclosing(self._rendered(pieces, sample_rate_hz, cache)) as rendered:
            async for pcm, missed in rendered:
                parts.append(pcm.data)
                misses += missed
        return Pcm(b"".join(parts), sample_rate_hz), misses

    async def _segment(
        self, piece: Piece, sample_rate_hz: int, cache: bool = True
    ) -> tuple[Pcm, bool]:
        """One sentence from the cache, or rendered, checked and cached; (pcm, was_rendered).

        With ``cache`` False (the text carries caller data) nothing is read from or written
        to the disk cache.
        """
        text, voice = piece.text, piece.voice
        key = cache_key(text, voice, self.rate_wpm, sample_rate_hz)
        if not cache:
            self.stats.uncached_renders += 1
            return await self._render_checked(text, voice, sample_rate_hz), True
        try:
            cached = await asyncio.to_thread(self.cache.load, key)
        except ValueError as exc:
            self.stats.corrupt_entries += 1
            get_logger().warning("tts_cache_corrupt", why=str(exc))
            cached = None
        if cached is not None and cached.sample_rate_hz == sample_rate_hz:
            self.stats.cache_hits += 1
            return cached, False
        self.stats.cache_misses += 1
        pcm = await self._render_checked(text, voice, sample_rate_hz)
        try:
            await asyncio.to_thread(self.cache.store, key, pcm)
        except OSError as exc:
            get_logger().warning("tts_cache_write_failed", why=str(exc))
        return pcm, True

    async def _render_checked(self, text: str, voice: str, sample_rate_hz: int) -> Pcm:
        data = b""
        for attempt in range(SILENT_RENDER_TRIES):
            # espeak through pyttsx3 now and then hands back a silent render of good text:
            # render again before calling the text unspeakable
            native = await self.pool.render(text, voice, self.rate_wpm)
            data = await asyncio.to_thread(
                resample, native.data, native.sample_rate_hz, sample_rate_hz
            )
            if data and rms_dbfs(data) >= SILENT_DBFS:
                break
            self.stats.silent_renders += 1
            get_logger().warning("tts_silent_render", voice=voice, attempt=attempt + 1)
        else:
            raise TtsError(
                "unspeakable", f"voice {voice!r} produced no audible speech for {text!r}"
            )
        return Pcm(data, sample_rate_hz)


def _prompt_key(path: Path, sample_rate_hz: int) -> tuple[str, int, int, int]:
    """A recorded prompt is converted again only when the file changes."""
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size, sample_rate_hz


def _convert_wav(path: Path, sample_rate_hz: int) -> Pcm:
    pcm = read_wav(path)
    return Pcm(resample(pcm.data, pcm.sample_rate_hz, sample_rate_hz), sample_rate_hz)
