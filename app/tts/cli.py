"""`hotline say "TEXT" --locale zh -o out.wav [--rate-hz 16000]`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from app.events import CALL_SAMPLE_RATE_HZ


async def _say(text: str, locale: str, out: Path, rate_hz: int, config: Path | None) -> float:
    from app.media.audio import write_wav
    from app.settings import load_settings
    from app.tts.service import TtsService

    settings = load_settings(config)
    async with TtsService(settings) as tts:
        pcm = await tts.synthesize(text, locale, rate_hz)
    await asyncio.to_thread(write_wav, out, pcm.data, pcm.sample_rate_hz)
    return pcm.duration_s


def say(
    text: Annotated[str, typer.Argument(help="what to say (Chinese characters for zh)")],
    locale: Annotated[str, typer.Option("--locale", "-l", help="locale: en, zh, ...")] = "en",
    out: Annotated[Path, typer.Option("--out", "-o", help="WAV file to write")] = Path("say.wav"),
    rate_hz: Annotated[
        int, typer.Option("--rate-hz", help="sample rate of the WAV (8000 for telephone)")
    ] = CALL_SAMPLE_RATE_HZ,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
    ] = None,
) -> None:
    """Synthesize TEXT with the locale's voice into a mono 16-bit WAV."""
    from app.log import configure_logging
    from app.tts.errors import TtsError

    configure_logging("WARNING", json_logs=False)
    try:
        duration_s = asyncio.run(_say(text, locale, out, rate_hz, config))
    except (TtsError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{out}: {duration_s:.2f} s at {rate_hz} Hz ({locale})")
