"""`hotline models list|pull` and `hotline transcribe FILE.wav`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from app.asr.errors import AsrError
from app.asr.registry import ModelInfo, ModelRegistry
from app.console import console
from app.events import Transcript
from app.media.audio import AudioFormatError, Pcm, frames, read_wav, resample
from app.settings import Settings, load_settings

models_app = typer.Typer(no_args_is_help=True)
_err = console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
]


BAD_INPUT_EXIT = 2  # a file Hotline cannot use; 1 is a model or environment problem


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _registry(config: Path | None) -> tuple[Settings, ModelRegistry]:
    settings = load_settings(config)
    return settings, ModelRegistry.for_settings(settings)


@models_app.command("list")
def list_models(config: ConfigOpt = None) -> None:
    """Show installed Vosk models and the ones that can be pulled."""
    _, registry = _registry(config)
    try:
        manifest = registry.manifest
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    installed = {m.name: m for m in registry.installed()}
    names = sorted(set(manifest) | set(installed))
    table = Table(title="Vosk models")
    table.add_column("name", no_wrap=True, min_width=max((len(n) for n in names), default=4))
    for col in ("locale", "rate", "size", "status", "checksum"):
        table.add_column(col, overflow="fold")
    for name in names:
        entry, info = manifest.get(name), installed.get(name)
        status = _status(info)
        rate = info.sample_rate_hz if info and info.sample_rate_hz else (
            entry.sample_rate_hz if entry else None)
        table.add_row(
            name, (entry.locale if entry else (info.locale if info else None)) or "?",
            f"{rate} Hz" if rate else "?", entry.size_label if entry else "-", status,
            ("sha256" if entry.verified else "UNVERIFIED") if entry else "-",
        )
    console().print(table)


def _status(info: ModelInfo | None) -> str:
    if info is None:
        return "pullable"
    if info.problem:
        return f"[red]broken: {info.problem}[/]"
    return f"[green]installed ({info.source})[/]"


@models_app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help="model name from models/manifest.toml")],
    url: Annotated[str | None, typer.Option("--url", help="download from this URL")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify",
                                            help="install without a SHA-256 check")] = False,
    config: ConfigOpt = None,
) -> None:
    """Download, verify and install a Vosk model into models/vosk/NAME."""
    from app.asr.pull import pull_model

    _, registry = _registry(config)
    try:
        dest = _pull_with_bar(registry, name, lambda n, p: pull_model(
            registry, n, url=url, verify=not no_verify, progress=p))
    except (AsrError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    console().print(f"installed {name} -> {dest}", highlight=False)


@models_app.command("ensure")
def ensure(
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="per-download timeout")] = 60.0,
    config: ConfigOpt = None,
) -> None:
    """Pull the configured models (asr_models) that are missing; `make run` calls this.

    Never fails: a model that cannot be downloaded (no network, bad checksum) is one line
    saying that calls in its locale are keypad-only, and how to pull it later.
    """
    from app.asr.pull import pull_model

    settings, registry = _registry(config)
    for locale, name in settings.asr_models.items():
        try:
            info = registry.info(name)
        except AsrError:
            info = None
        if info is not None and info.problem is None:
            continue
        if info is not None:
            _err.print(f"note: {name} ({locale}) is installed but broken: {info.problem}; calls "
                       f"in {locale} are keypad-only", highlight=False)
            continue
        try:
            dest = _pull_with_bar(registry, name, lambda n, p: pull_model(
                registry, n, progress=p, timeout_s=timeout_s))
        except (AsrError, ValueError) as exc:
            _err.print(f"note: calls in {locale} are keypad-only: {name} could not be pulled "
                       f"({exc}); retry with: hotline models pull {name}", highlight=False)
            continue
        _err.print(f"installed {name} ({locale}) -> {dest}", highlight=False)


def _pull_with_bar(registry: ModelRegistry, name: str,
                   run: Callable[[str, Callable[[int, int | None], None]], Path]) -> Path:
    if not _err.is_terminal:  # a log file gets the result line, not a bar's frames
        return run(name, lambda done, total: None)
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task(f"pull {name}", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return run(name, progress)


def _pick_model(settings: Settings, registry: ModelRegistry, locale: str,
                model: str | None) -> str:
    if model:
        return model
    if locale in settings.asr_models:
        return settings.asr_models[locale]
    for info in registry.installed():
        if info.locale and info.problem is None and info.locale.split("-")[0] == locale:
            return info.name
    raise AsrError(f"no Vosk model for locale {locale!r}: set asr_models or pass --model")


def installed_locales(settings: Settings, registry: ModelRegistry) -> dict[str, str]:
    """locale -> usable installed model (the configured one first, then any other)."""
    out: dict[str, str] = {}
    usable = [m for m in registry.installed() if m.problem is None and m.locale]
    names = {m.name for m in usable}
    for loc, name in settings.asr_models.items():
        if name in names:
            out[loc] = name
    for m in usable:
        assert m.locale is not None
        out.setdefault(m.locale.split("-")[0], m.name)
    return out


def _choose_locale(settings: Settings, registry: ModelRegistry) -> str:
    """No --locale: the only installed locale, or the default one with a note, or an error
    saying which locales are installed and how to choose."""
    have = installed_locales(settings, registry)
    if len(have) == 1:
        return next(iter(have))
    if not have:
        pulls = "; ".join(f"hotline models pull {name}" for name in settings.asr_models.values())
        raise AsrError(f"no speech model is installed; pull one ({pulls}), or give --model")
    listed = ", ".join(f"{loc} ({name})" for loc, name in sorted(have.items()))
    if settings.default_locale in have:
        _err.print(f"note: transcribing as {settings.default_locale} (default_locale); "
                   f"installed: {listed}; choose with --locale", highlight=False, soft_wrap=True)
        return settings.default_locale
    raise AsrError(f"several locales are installed: {listed}; choose one with --locale")


def load_audio(file: Path) -> tuple[Pcm, list[str]]:
    """The file as 16-bit mono PCM at its own rate, and notes on what was converted."""
    if file.is_dir():
        raise AudioFormatError(f"{file} is a folder; give one WAV file")
    notes: list[str] = []
    try:
        with wave.open(str(file), "rb") as wav:
            channels = wav.getnchannels()
    except (wave.Error, EOFError, OSError):
        channels = 1
    try:
        pcm = read_wav(file)
    except AudioFormatError as exc:
        if "unknown format: 3" not in str(exc):
            raise
        pcm = _decode_float_wav(file)
        notes.append("32-bit float samples converted to 16-bit PCM")
    if channels > 1:
        notes.append(f"{channels} channels mixed down to mono")
    return pcm, notes


def _decode_float_wav(file: Path) -> Pcm:
    """A float WAV (format 3, which the wave module cannot read) through PyAV, to s16 mono."""
    import av

    try:
        with av.open(str(file)) as container:
            stream = container.streams.audio[0]
            rate = int(stream.rate)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            parts = [
                out.to_ndarray().tobytes()
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            parts += [out.to_ndarray().tobytes() for out in resampler.resample(None)]
    except (av.FFmpegError, IndexError) as exc:
        raise AudioFormatError(f"{file}: cannot decode float WAV ({exc})") from exc
    data = b"".join(parts)
    if not data:
        raise AudioFormatError(f"{file}: no audio frames")
    return Pcm(data, rate)


async def _transcribe(settings: Settings, registry: ModelRegistry, locale: str, name: str,
                      pcm: Pcm, grammar: list[str] | None) -> list[Transcript]:
    from app.asr.engine import AsrEngine

    chunks = list(frames(pcm.data, pcm.sample_rate_hz))
    # one file, one stream: decode in this process (worker processes would load the model
    # a second time for nothing)
    run_settings = settings.model_copy(update={
        "asr_models": {locale: name}, "asr_queue_max_chunks": max(len(chunks) + 10, 10),
        "asr_decoder": "threads",
    })
    engine = AsrEngine(run_settings, registry)
    try:
        problems = await engine.aload()
        if problems:
            raise AsrError(problems[locale])
        stream = engine.stream(locale, pcm.sample_rate_hz, grammar=grammar)
        for chunk in chunks:
            stream.push(chunk)
        stream.end_input()
        return [ev async for ev in stream if isinstance(ev, Transcript) and ev.is_final]
    finally:
        await engine.aclose()


def _prepare_audio(file: Path, model_rate_hz: int) -> Pcm:
    pcm, notes = load_audio(file)
    for note in notes:
        _err.print(f"note: {file.name}: {note}", highlight=False, soft_wrap=True)
    if pcm.sample_rate_hz not in (8_000, 16_000, 32_000, 48_000):
        pcm = Pcm(resample(pcm.data, pcm.sample_rate_hz, model_rate_hz), model_rate_hz)
    elif pcm.sample_rate_hz < model_rate_hz:
        _err.print(f"note: {pcm.sample_rate_hz} Hz audio with a {model_rate_hz} Hz model "
                   "(upsampled; accuracy may drop)", highlight=False, soft_wrap=True)
    return pcm


def transcribe(
    file: Annotated[Path, typer.Argument(help="16-bit PCM WAV file")],
    grammar: Annotated[str | None, typer.Option(
        "--grammar", help="comma-separated phrase list (grammar mode)")] = None,
    locale: Annotated[str | None, typer.Option("--locale", help="e.g. en, zh, ko")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Vosk model name")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Transcribe a WAV file with Vosk; final transcripts with times and confidences."""
    settings, registry = _registry(config)
    phrases = [p.strip() for p in grammar.split(",")] if grammar is not None else None
    try:
        if file.is_dir() or not file.exists():
            load_audio(file)  # the file's own error before any model question
        if locale is not None:
            loc = locale
        elif model is not None:
            info = registry.info(model)
            loc = (info.locale or settings.default_locale).split("-")[0]
        else:
            loc = _choose_locale(settings, registry)
        name = _pick_model(settings, registry, loc, model)
        info = registry.info(name)
        if info.problem or info.sample_rate_hz is None:
            raise AsrError(info.problem or f"model {name} is not usable")
        pcm = _prepare_audio(file, info.sample_rate_hz)
        # stdout carries only the transcript: log lines (stdout by default) go to stderr
        with contextlib.redirect_stdout(sys.stderr):
            finals = asyncio.run(_transcribe(settings, registry, loc, name, pcm, phrases))
    except AudioFormatError as exc:
        raise _fail(str(exc), BAD_INPUT_EXIT) from exc
    except (AsrError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        doc = {"file": str(file), "model": name, "locale": loc,
               "sample_rate_hz": pcm.sample_rate_hz, "grammar": phrases,
               "text": " ".join(t.text for t in finals if t.text),
               "transcripts": [t.model_dump() for t in finals]}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return
    for t in finals:
        print(f"[{t.start_s:7.2f} - {t.end_s:7.2f}] {t.text or '(no match)'}  "
              f"(confidence {t.confidence:.2f})")
