"""`hotline say "TEXT" --locale zh -o out.wav [--rate-hz 16000]`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from app.events import CALL_SAMPLE_RATE_HZ
from app.settings import Settings

BAD_INPUT_REASONS = {"unknown_locale", "empty_text", "unspeakable", "too_long"}


async def _say(text: str, locale: str, out: Path, rate_hz: int, settings: Settings) -> float:
    from app.media.audio import write_wav
    from app.tts.service import TtsService, check_rate

    check_rate(rate_hz)
    async with TtsService(settings) as tts:
        tts.plan(text, locale)  # bad text is refused before anything renders
        pcm = await tts.synthesize(text, locale, rate_hz)
    await asyncio.to_thread(write_wav, out, pcm.data, pcm.sample_rate_hz)
    return pcm.duration_s


def say(
    text: Annotated[str, typer.Argument(help="what to say (Chinese characters for zh)")],
    locale: Annotated[str | None, typer.Option(
        "--locale", "-l", help="locale: en, zh, ... (default: settings default_locale)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="WAV file to write")] = Path("say.wav"),
    rate_hz: Annotated[
        int, typer.Option("--rate-hz", help="sample rate of the WAV (8000 for telephone)")
    ] = CALL_SAMPLE_RATE_HZ,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
    ] = None,
) -> None:
    """Synthesize TEXT with the locale's voice into a mono 16-bit WAV.

    Bilingual text is spoken by each language's voice; numbers, dates and money are read
    the way a hotline reads them; long text is rendered sentence by sentence.
    """
    from app.cli_errors import fail
    from app.log import configure_logging
    from app.settings import load_settings
    from app.tts.errors import TtsError

    configure_logging("WARNING", json_logs=False)
    settings = load_settings(config)
    loc = locale or settings.default_locale
    if out.is_dir():
        raise fail(f"--out {out} is a folder; give a .wav file name")
    try:
        duration_s = asyncio.run(_say(text, loc, out, rate_hz, settings))
    except TtsError as exc:
        raise fail(str(exc), 2 if exc.reason in BAD_INPUT_REASONS else 1) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror or exc}", 1) from None
    typer.echo(f"{out}: {duration_s:.2f} s at {rate_hz} Hz ({loc})")
