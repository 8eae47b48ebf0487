"""`hotline call --wav FILE [--dtmf "1@3.0,#@5.2"] [--number N] [--server URL] [--out bot.wav]
[--sip [--sip-port 5060]]`.

A caller simulated over a real WebRTC connection (``app.call.caller``): plays the WAV in real
time, presses the keys at the given seconds, prints the conversation from the live events
WebSocket and saves what the bot said. Without ``--server`` the app runs in this process on a
free 127.0.0.1 port. ``--sip`` places the call over SIP/RTP instead (``app.sip.simcaller``:
G.711, RFC 4733 keys), to the server's SIP port (in process: SIP on a free port).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer

from app.events import CALL_SAMPLE_RATE_HZ


class CliError(RuntimeError):
    """A problem to print as ``error: ...`` with exit status 1."""


def describe_event(event: dict[str, Any]) -> str | None:
    """One line of conversation for an event, or None for events not worth printing."""
    kind = event.get("type")
    if kind == "call_started":
        return f"  call {event.get('call_id', '')} started"
    if kind == "prompt_played":
        return f"bot    : {event.get('text') or '(recording)'}"
    if kind == "transcript" and event.get("is_final"):
        return f"heard  : {event.get('text') or '(nothing)'}"
    if kind == "intent":
        confidence = event.get("confidence")
        extra = f" ({confidence:.2f})" if isinstance(confidence, float | int) else ""
        return f"intent : {event.get('intent') or 'not understood'}{extra}"
    if kind == "dtmf":
        return f"key    : {event.get('digit')}"
    if kind == "node_entered":
        return f"  -> {event.get('node')}"
    if kind == "transfer":
        return f"  transfer to {event.get('queue')} ({event.get('reason', '')})"
    if kind == "call_ended":
        return f"  call ended: {event.get('outcome')}"
    return None


@contextlib.asynccontextmanager
async def serve_in_process(app: Any, startup_timeout_s: float = 120.0) -> AsyncIterator[str]:
    """Serve ``app`` (a FastAPI app) with uvicorn on a free 127.0.0.1 port; yields its URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="on",
        timeout_graceful_shutdown=5,
    ))
    task = asyncio.create_task(server.serve(), name="hotline-in-process-server")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + startup_timeout_s
        while not server.started:
            if task.done():
                raise CliError("the in-process server failed to start (see the log above)")
            if loop.time() > deadline:
                raise CliError(f"the in-process server did not start in {startup_timeout_s} s")
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task


async def first_hotline(server_url: str) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{server_url.rstrip('/')}/v1/hotlines")
    if response.status_code != 200 or not response.json():
        raise CliError(f"no --number given and the server lists no hotline numbers "
                       f"(GET /v1/hotlines: {response.status_code})")
    return str(response.json()[0]["number"])


async def _run_call(wav: Path, schedule: list[tuple[str, float]], number: str | None,
                    locale: str | None, server: str | None, out: Path | None,
                    timeout_s: float, grace_s: float, config: Path | None) -> str:
    from app.call.caller import place_call
    from app.media.audio import read_wav, write_wav

    pcm = await asyncio.to_thread(read_wav, wav)

    def show(event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line is not None:
            typer.echo(line)

    async with contextlib.AsyncExitStack() as stack:
        if server is None:
            from app.main import create_app
            from app.settings import load_settings

            app = create_app(load_settings(config))
            url = await stack.enter_async_context(serve_in_process(app))
        else:
            url = server
        hotline = number or await first_hotline(url)
        typer.echo(f"calling {hotline} at {url} with {wav.name} ({pcm.duration_s:.1f} s)")
        result = await place_call(url, pcm, hotline_number=hotline, locale=locale,
                                  dtmf=schedule, grace_s=grace_s, timeout_s=timeout_s,
                                  on_event=show)
    if out is not None:
        await asyncio.to_thread(write_wav, out, result.bot_audio.data, CALL_SAMPLE_RATE_HZ)
        typer.echo(f"bot audio: {out} ({result.bot_audio.duration_s:.1f} s)")
    typer.echo(f"set-up {1000 * result.setup_s:.0f} ms; hung up by {result.ended_by}; "
               f"keys sent: {''.join(result.dtmf_sent) or 'none'}")
    return result.call_id


async def _watch_sip_call(url: str, caller_number: str, show: Any) -> None:
    """Print the events of the call placed from ``caller_number`` (the all-calls stream)."""
    import json

    import websockets

    ours: set[str] = set()
    ws_url = url.replace("http", "ws", 1).rstrip("/") + "/v1/calls/events"
    async with websockets.connect(ws_url) as socket:
        async for message in socket:
            event = json.loads(message)
            if event.get("type") == "call_started" and event.get("caller_number") == caller_number:
                ours.add(str(event.get("call_id")))
            if event.get("call_id") in ours:
                show(event)
                if event.get("type") == "call_ended":
                    return


async def _run_sip_call(wav: Path, schedule: list[tuple[str, float]], number: str | None,
                        server: str | None, sip_port: int, out: Path | None, timeout_s: float,
                        grace_s: float, config: Path | None) -> None:
    import secrets
    from urllib.parse import urlparse

    from app.media.audio import read_wav, write_wav
    from app.sip.simcaller import place_sip_call

    pcm = await asyncio.to_thread(read_wav, wav)
    caller = "+86138" + "".join(secrets.choice("0123456789") for _ in range(8))

    def show(event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line is not None:
            typer.echo(line)

    async with contextlib.AsyncExitStack() as stack:
        if server is None:
            from app.main import create_app
            from app.settings import load_settings

            settings = load_settings(config, sip_enabled=True, sip_port=0)
            app = create_app(settings)
            url = await stack.enter_async_context(serve_in_process(app))
            host, port = "127.0.0.1", app.state.sip.port
        else:
            url, host, port = server, urlparse(server).hostname or "127.0.0.1", sip_port
        hotline = number or await first_hotline(url)
        typer.echo(f"calling {hotline} over SIP at {host}:{port} with {wav.name} "
                   f"({pcm.duration_s:.1f} s)")
        watcher = asyncio.create_task(_watch_sip_call(url, caller, show))
        try:
            result = await place_sip_call(host, port, pcm, number=hotline, caller_number=caller,
                                          dtmf=schedule, grace_s=grace_s, timeout_s=timeout_s)
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(asyncio.shield(watcher), 20)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    if not result.dial.answered:
        raise CliError(f"the call was not answered: {result.dial.status} {result.dial.reason}")
    if out is not None:
        await asyncio.to_thread(write_wav, out, result.bot_audio.data,
                                result.bot_audio.sample_rate_hz)
        typer.echo(f"bot audio: {out} ({result.bot_audio.duration_s:.1f} s)")
    info = result.media_info
    typer.echo(f"set-up {1000 * result.setup_s:.0f} ms; hung up by {result.ended_by}; "
               f"codec {info.get('codec')}; packets in {info.get('packets_received')}, "
               f"lost {info.get('packets_lost')}; keys sent: "
               f"{''.join(d for d, _ in schedule) or 'none'}")


def call(
    wav: Annotated[Path, typer.Option("--wav", help="what the caller says: 16-bit PCM WAV")],
    dtmf: Annotated[str, typer.Option(help='keys and when, e.g. "1@3.0,#@5.2"')] = "",
    number: Annotated[
        str | None, typer.Option("--number", "-n", help="hotline number; default the first")
    ] = None,
    locale: Annotated[str | None, typer.Option("--locale", "-l", help="zh, en, ko ...")] = None,
    server: Annotated[
        str | None, typer.Option(help="e.g. http://127.0.0.1:8080; default in-process")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="save the bot audio")] = None,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="hang up after this")] = 30.0,
    grace_s: Annotated[
        float, typer.Option("--grace-s", help="stay on the line after the WAV ends")
    ] = 3.0,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
    ] = None,
    sip: Annotated[
        bool, typer.Option("--sip", help="call over SIP/RTP (G.711, RFC 4733 keys) instead")
    ] = False,
    sip_port: Annotated[
        int, typer.Option("--sip-port", help="with --sip --server: the server's SIP port")
    ] = 5060,
) -> None:
    """Place a simulated call (WebRTC, or SIP/RTP with --sip): play WAV, press keys, print
    the conversation."""
    import httpx

    from app.call.caller import CallError, parse_dtmf_schedule
    from app.log import configure_logging
    from app.media.audio import AudioFormatError

    configure_logging("WARNING", json_logs=False)
    try:
        schedule = parse_dtmf_schedule(dtmf)
        if sip:
            asyncio.run(_run_sip_call(wav, schedule, number, server, sip_port, out, timeout_s,
                                      grace_s, config))
        else:
            asyncio.run(_run_call(wav, schedule, number, locale, server, out, timeout_s,
                                  grace_s, config))
    except (AudioFormatError, CallError, CliError, ValueError, OSError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
