"""`hotline models list|pull` and `hotline transcribe FILE.wav`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
from app.events import Transcript
from app.media.audio import AudioFormatError, Pcm, frames, read_wav, resample
from app.settings import Settings, load_settings

models_app = typer.Typer(no_args_is_help=True)
_err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
]


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(1)


def _registry(config: Path | None) -> tuple[Settings, ModelRegistry]:
    settings = load_settings(config)
    return settings, ModelRegistry(settings.models_dir)


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
    Console().print(table)


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
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task(f"pull {name}", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        try:
            dest = pull_model(registry, name, url=url, verify=not no_verify, progress=progress)
        except (AsrError, ValueError) as exc:
            raise _fail(str(exc)) from exc
    Console().print(f"installed {name} -> {dest}", highlight=False)


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
    pcm = read_wav(file)
    if pcm.sample_rate_hz not in (8_000, 16_000, 32_000, 48_000):
        pcm = Pcm(resample(pcm.data, pcm.sample_rate_hz, model_rate_hz), model_rate_hz)
    elif pcm.sample_rate_hz < model_rate_hz:
        _err.print(f"note: {pcm.sample_rate_hz} Hz audio with a {model_rate_hz} Hz model "
                   "(upsampled; accuracy may drop)", highlight=False)
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
    loc = locale or settings.default_locale
    phrases = [p.strip() for p in grammar.split(",")] if grammar is not None else None
    try:
        name = _pick_model(settings, registry, loc, model)
        info = registry.info(name)
        if info.problem or info.sample_rate_hz is None:
            raise AsrError(info.problem or f"model {name} is not usable")
        pcm = _prepare_audio(file, info.sample_rate_hz)
        # stdout carries only the transcript: log lines (stdout by default) go to stderr
        with contextlib.redirect_stdout(sys.stderr):
            finals = asyncio.run(_transcribe(settings, registry, loc, name, pcm, phrases))
    except (AsrError, AudioFormatError, ValueError) as exc:
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
