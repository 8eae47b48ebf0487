"""The ``hotline`` command: serve, call, transcribe, say, intents, flows, models, users,
tokens, reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.asr.cli import models_app, transcribe
from app.auth.cli import tokens_app, users_app
from app.cli_errors import HotlineGroup
from app.flows.cli import flows_app
from app.nlu.cli import intents_app
from app.reports.cli import reports_app
from app.routing.cli import routing_app
from app.sim.cli import call
from app.tts.cli import say

app = typer.Typer(
    name="hotline",
    help="Hotline: an AI voice front-end for customer-service hotlines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=HotlineGroup,
)
app.add_typer(models_app, name="models", help="Speech models: list and pull.")
app.add_typer(intents_app, name="intents", help="Intents: train, eval, test, predict.")
app.add_typer(flows_app, name="flows", help="IVR flows: check, chat, test, graph.")
app.add_typer(routing_app, name="routing", help="Routing: import, export, check, explain, replay.")
app.add_typer(users_app, name="users", help="Back-office users: add, list, passwd, disable.")
app.add_typer(tokens_app, name="tokens", help="API tokens: create, list, revoke.")
app.add_typer(reports_app, name="reports", help="Reports: rebuild the hourly roll-ups.")
app.command("transcribe", help="Transcribe a WAV file with Vosk.")(transcribe)
app.command("say", help="Synthesize speech to a WAV file.")(say)
app.command("call", help="Place a simulated call (WebRTC, or SIP/RTP with --sip).")(call)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (HOTLINE_CONFIG)")
]


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    log_format: Annotated[str | None, typer.Option(
        "--log-format", help="console or json (default: console on a terminal, else json)",
    )] = None,
) -> None:
    """Run the Hotline server (API, softphone, call handling)."""
    import sys

    import uvicorn

    from app.cli_errors import fail
    from app.log import configure_logging
    from app.serve import ServeError, banner, preflight
    from app.settings import load_settings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if log_format not in (None, "console", "json"):
        raise fail(f"--log-format {log_format!r}: use console or json")
    if log_format is not None:
        overrides["log_json"] = log_format == "json"
    settings = load_settings(config, **overrides)
    try:
        preflight(settings)  # port, flows, database: before seconds of model loading
    except ServeError as exc:
        raise fail(str(exc), 1) from None
    configure_logging(settings.log_level, settings.log_json)
    from app.main import create_app  # the heavy imports, once the checks have passed

    application = create_app(settings)
    banner(settings, application.routes, sys.stdout)
    from app.cluster.drain import DrainingServer  # SIGTERM: drain the calls, then stop

    server_config = uvicorn.Config(
        application, host=settings.host, port=settings.port, log_config=None,
        timeout_graceful_shutdown=10, loop=settings.event_loop,
    )
    try:
        DrainingServer(server_config, application, settings.drain_timeout_s).run()
    except KeyboardInterrupt:  # Ctrl+C: stopped cleanly (uvicorn re-raises the signal)
        pass


def main() -> None:
    app()


if __name__ == "__main__":
    main()
