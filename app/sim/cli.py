"""`hotline call [--wav FILE] [--dtmf "1@menu,4567#@menu"] [--number N] [--server URL] ...`.

A caller simulated over a real WebRTC connection (``app.sim.caller``): plays the WAV in real
time (silence without one), presses keys at given seconds or when the bot listens, prints the
conversation from the live events WebSocket and saves what the bot said. Without
``--server`` the app runs in this process on a free 127.0.0.1 port (``serve_in_process``).
``--sip`` places the call over SIP/RTP instead (``app.sip.simcaller``: G.711, RFC 4733 keys)
to the server's SIP port (in process: SIP on a free port); keys then go at seconds only.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from app.events import CALL_SAMPLE_RATE_HZ
from app.settings import Settings


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
    if kind == "webhook" and event.get("phase") == "result":
        status = "ok" if event.get("ok") else "failed"
        return f"  webhook {event.get('url')}: {status} ({event.get('status')})"
    if kind == "transfer":
        return f"  transfer to {event.get('queue')} ({event.get('reason', '')})"
    if kind == "error":
        return f"  error: {event.get('reason')}: {event.get('detail', '')}"
    if kind == "call_ended":
        return f"  call ended: {event.get('outcome')}"
    return None


@dataclass(frozen=True)
class InProcessServer:
    url: str
    app: Any  # the FastAPI app
    settings: Settings  # as the app sees them: host and port are the real listen address


@contextlib.asynccontextmanager
async def serve_in_process(settings: Settings,
                           startup_timeout_s: float = 120.0) -> AsyncIterator[InProcessServer]:
    """Serve ``create_app(settings)`` with uvicorn on a free 127.0.0.1 port.

    The socket is bound before the app is made, so the app's settings carry the address it
    really listens on: relative webhook URLs in flows (the demo order service) reach it.
    """
    import uvicorn

    from app.main import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    served = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    url = f"http://127.0.0.1:{port}"
    app = create_app(served, base_url=url)
    server = uvicorn.Server(uvicorn.Config(
        app, log_config=None, lifespan="on", timeout_graceful_shutdown=5,
    ))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="hotline-in-process-server")
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + startup_timeout_s
        while not server.started:  # uvicorn offers no event for this; poll its flag
            if task.done():
                raise CliError("the in-process server failed to start (see the log above)")
            if loop.time() > deadline:
                raise CliError(f"the in-process server did not start in {startup_timeout_s} s")
            await asyncio.sleep(0.05)
        yield InProcessServer(url, app, served)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task
        sock.close()


async def first_hotline(server_url: str) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{server_url.rstrip('/')}/v1/hotlines")
    if response.status_code != 200 or not response.json():
        raise CliError(f"no --number given and the server lists no hotline numbers "
                       f"(GET /v1/hotlines: {response.status_code})")
    return str(response.json()[0]["number"])


@dataclass(frozen=True)
class CallOptions:
    wav: Path | None
    dtmf: str
    number: str | None
    locale: str | None
    server: str | None
    out: Path | None
    codec: str | None
    timeout_s: float
    grace_s: float
    config: Path | None
    sip: bool = False
    sip_port: int = 5060
    token: str | None = None
    next_servers: tuple[str, ...] = ()  # tried in turn when a node answers 503 (or not)


async def _run_call(options: CallOptions) -> str:
    from app.media.audio import Pcm, read_wav, write_wav
    from app.settings import load_settings
    from app.sim.caller import parse_dtmf_schedule, place_call

    schedule = parse_dtmf_schedule(options.dtmf)
    wav = options.wav
    pcm = await asyncio.to_thread(read_wav, wav) if wav else Pcm(b"", CALL_SAMPLE_RATE_HZ)

    def show(event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line is not None:
            typer.echo(line)

    def note(text: str) -> None:
        typer.echo(f"note   : {text}")

    async with contextlib.AsyncExitStack() as stack:
        if options.server is None:  # a one-off admin token: the whole call is shown
            token: str | None = secrets.token_urlsafe(32)
            served = await stack.enter_async_context(serve_in_process(
                load_settings(options.config, auth_bootstrap_token=token)))
            url = served.url
        else:  # a --token shows everything; without one, what the caller may see
            url, token = options.server, options.token
        hotline = options.number or await first_hotline(url)
        what = f"{wav.name} ({pcm.duration_s:.1f} s)" if wav else "silence"
        typer.echo(f"calling {hotline} at {url} with {what}")
        result = await place_call([url, *options.next_servers], pcm, hotline_number=hotline,
                                  locale=options.locale, dtmf=schedule, codec=options.codec,
                                  grace_s=options.grace_s, timeout_s=options.timeout_s,
                                  on_event=show, on_note=note, events_token=token)
    if options.out is not None:
        await asyncio.to_thread(write_wav, options.out, result.bot_audio.data,
                                CALL_SAMPLE_RATE_HZ)
        typer.echo(f"bot audio: {options.out} ({result.bot_audio.duration_s:.1f} s)")
    typer.echo(f"set-up {1000 * result.setup_s:.0f} ms; hung up by {result.ended_by}; "
               f"keys sent: {''.join(result.dtmf_sent) or 'none'}")
    return result.call_id


async def _watch_sip_call(url: str, caller_number: str, show: Any, token: str | None,
                          subscribed: asyncio.Event) -> None:
    """Print the events of the call placed from ``caller_number`` (the all-calls stream,
    which needs a token with ``events:live``: a SIP caller has no caller's pass)."""
    import json

    import websockets

    ours: set[str] = set()
    ws_url = url.replace("http", "ws", 1).rstrip("/") + "/v1/calls/events"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        socket_ = await websockets.connect(ws_url, additional_headers=headers)
    except (OSError, websockets.InvalidHandshake) as exc:
        typer.echo(f"note   : the call's events are not shown ({exc}); give an API token "
                   "with events:live as --token")
        return
    finally:
        subscribed.set()  # the call is placed once its call_started cannot be missed
    async with socket_:
        async for message in socket_:
            event = json.loads(message)
            if event.get("type") == "call_started" and event.get("caller_number") == caller_number:
                ours.add(str(event.get("call_id")))
            if event.get("call_id") in ours:
                show(event)
                if event.get("type") == "call_ended":
                    return


def _timed_keys(options: CallOptions) -> list[tuple[str, float]]:
    from app.sim.caller import parse_dtmf_schedule

    timed: list[tuple[str, float]] = []
    for press in parse_dtmf_schedule(options.dtmf):
        if press.at_s is None:
            raise CliError(f"--sip presses keys at seconds of the call only (e.g. 1@3.0), "
                           f"not {press}")
        timed.extend((key, press.at_s) for key in press.keys)
    return timed


async def _run_sip_call(options: CallOptions) -> None:
    from urllib.parse import urlparse

    from app.media.audio import Pcm, read_wav, write_wav
    from app.settings import load_settings
    from app.sip.simcaller import place_sip_call

    schedule = _timed_keys(options)
    wav = options.wav
    pcm = await asyncio.to_thread(read_wav, wav) if wav else Pcm(b"", CALL_SAMPLE_RATE_HZ)
    caller = "+86138" + "".join(secrets.choice("0123456789") for _ in range(8))

    def show(event: dict[str, Any]) -> None:
        line = describe_event(event)
        if line is not None:
            typer.echo(line)

    async with contextlib.AsyncExitStack() as stack:
        if options.server is None:  # a one-off admin token for this process's own server
            token: str | None = secrets.token_urlsafe(32)
            settings = load_settings(options.config, sip_enabled=True, sip_port=0,
                                     auth_bootstrap_token=token)
            served = await stack.enter_async_context(serve_in_process(settings))
            url, host, port = served.url, "127.0.0.1", int(served.app.state.sip.port)
        else:
            url, token = options.server, options.token
            host, port = urlparse(url).hostname or "127.0.0.1", options.sip_port
        hotline = options.number or await first_hotline(url)
        what = f"{wav.name} ({pcm.duration_s:.1f} s)" if wav else "silence"
        typer.echo(f"calling {hotline} over SIP at {host}:{port} with {what}")
        subscribed = asyncio.Event()
        watcher = asyncio.create_task(_watch_sip_call(url, caller, show, token, subscribed))
        try:
            async with asyncio.timeout(30):
                await subscribed.wait()
            result = await place_sip_call(host, port, pcm, number=hotline, caller_number=caller,
                                          dtmf=schedule, grace_s=options.grace_s,
                                          timeout_s=options.timeout_s)
            with contextlib.suppress(TimeoutError, OSError):
                async with asyncio.timeout(20):
                    await asyncio.shield(watcher)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    if not result.dial.answered:
        raise CliError(f"the call was not answered: {result.dial.status} {result.dial.reason}")
    if options.out is not None:
        await asyncio.to_thread(write_wav, options.out, result.bot_audio.data,
                                result.bot_audio.sample_rate_hz)
        typer.echo(f"bot audio: {options.out} ({result.bot_audio.duration_s:.1f} s)")
    info = result.media_info
    typer.echo(f"set-up {1000 * result.setup_s:.0f} ms; hung up by {result.ended_by}; "
               f"codec {info.get('codec')}; packets in {info.get('packets_received')}, "
               f"lost {info.get('packets_lost')}; keys sent: "
               f"{''.join(d for d, _ in schedule) or 'none'}")


def call(
    wav: Annotated[Path | None, typer.Option(
        "--wav", help="what the caller says: 16-bit PCM WAV; default silence")] = None,
    dtmf: Annotated[str, typer.Option(
        help='keys and when: at a second of the call, or when the bot next listens, '
             'e.g. "1@menu,4567#@menu" or "1@3.0"')] = "",
    number: Annotated[
        str | None, typer.Option("--number", "-n", help="hotline number; default the first")
    ] = None,
    locale: Annotated[str | None, typer.Option("--locale", "-l", help="zh, en, ko ...")] = None,
    server: Annotated[
        str | None, typer.Option(help="e.g. http://127.0.0.1:8080; default in-process")
    ] = None,
    next_server: Annotated[list[str] | None, typer.Option(
        "--next-server", help="with --server: another node, tried when a node answers 503 "
                              "(full, draining) or not at all; repeatable")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="save the bot audio")] = None,
    codec: Annotated[str | None, typer.Option(
        help="the only codec the caller offers: pcmu or opus; default both")] = None,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="hang up after this")] = 120.0,
    grace_s: Annotated[float, typer.Option(
        "--grace-s", help="once everything is said and pressed, hang up when the bot has "
                          "waited this long")] = 3.0,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
    ] = None,
    sip: Annotated[
        bool, typer.Option("--sip", help="call over SIP/RTP (G.711, RFC 4733 keys) instead")
    ] = False,
    sip_port: Annotated[
        int, typer.Option("--sip-port", help="with --sip --server: the server's SIP port")
    ] = 5060,
    token: Annotated[str | None, typer.Option(
        help="with --server: an API token (transcripts:read, with --sip events:live) to "
             "print all of the call's events; without it a WebRTC caller sees the "
             "conversation only")
    ] = None,
) -> None:
    """Place a simulated call (WebRTC, or SIP/RTP with --sip): play WAV, press keys, print
    the conversation."""
    import httpx

    from app.log import configure_logging
    from app.media.audio import AudioFormatError
    from app.sim.caller import CODECS, CallError

    configure_logging("WARNING", json_logs=False)
    try:
        if codec is not None and codec.lower() not in CODECS:
            raise CliError(f"--codec must be {' or '.join(CODECS)}, not {codec!r}")
        if next_server and server is None:
            raise CliError("--next-server needs --server (the first node to try)")
        options = CallOptions(wav, dtmf, number, locale, server, out, codec, timeout_s, grace_s,
                              config, sip, sip_port, token, tuple(next_server or ()))
        asyncio.run(_run_sip_call(options) if sip else _run_call(options))
    except (AudioFormatError, CallError, CliError, ValueError, OSError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
