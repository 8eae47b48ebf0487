"""``hotline serve`` before the models load: check what would make it fail late, then say
where it listens and what to open.

A busy port used to be found after 13 s of model loading and a logged ``ready``; a database
on a closed port after a 156-line traceback. ``preflight`` finds both first.
"""

from __future__ import annotations

import errno
import socket
from typing import TextIO

from starlette.routing import BaseRoute

from app.settings import Settings
from app.settings_check import SettingsError


class ServeError(RuntimeError):
    """The server cannot start here; the message says why and what to change."""


def check_port_free(host: str, port: int) -> None:
    """Raise ``ServeError`` when ``host:port`` cannot be bound (in use, not an address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(
                    f"port {port} on {host} is already in use (another `hotline serve`?); "
                    "pick another with --port or HOTLINE_PORT"
                ) from None
            raise ServeError(
                f"cannot listen on {host}:{port}: {exc.strerror} (check --host / HOTLINE_HOST)"
            ) from None


def check_database(settings: Settings) -> None:
    """Open and migrate the database (quick when current); errors name the URL setting."""
    from app.storage.db import Database

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServeError(f"cannot create the data folder {settings.data_dir}: {exc.strerror} "
                         "(HOTLINE_DATA_DIR / data_dir)") from None
    try:
        db = Database.from_settings(settings)
    except ValueError as exc:
        raise SettingsError(f"HOTLINE_DATABASE_URL / database_url: {exc}") from None
    try:
        db.migrate()
    finally:
        db.dispose()


def check_flows(settings: Settings) -> None:
    """The flows folder exists and its flows load (structure only; intents come later)."""
    from app.flows.loader import check_files, flow_files

    folder = settings.flows_dir
    if not folder.is_dir():
        raise ServeError(f"flows folder not found: {folder} (HOTLINE_FLOWS_DIR / flows_dir)")
    _, errors = check_files(flow_files(folder))
    if errors:
        raise SettingsError("\n".join(str(e) for e in errors))


def preflight(settings: Settings) -> None:
    from app.seed import seed_intent_model

    check_port_free(settings.host, settings.port)
    check_flows(settings)
    check_database(settings)
    try:
        seed_intent_model(settings)  # a fresh models volume: the shipped demo model
    except OSError as exc:
        raise ServeError(f"cannot copy the shipped intent model into "
                         f"{settings.intent_model_path}: {exc}") from None


def public_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def banner(settings: Settings, routes: list[BaseRoute], out: TextIO) -> None:
    """Where the server listens and which pages to open (those this app serves)."""
    from app.api.landing import available_pages

    base = public_url(settings.host, settings.port)
    lines = [f"Hotline listening on {base} (loading models; /readyz says when ready)"]
    width = max((len(title) for _, title, _ in available_pages(routes)), default=0)
    for path, title, _ in available_pages(routes):
        lines.append(f"  {title:<{width}}  {base}{path}")
    if settings.host in ("0.0.0.0", "", "::"):
        lines.append(f"  (bound to {settings.host or 'all addresses'}: reachable from other "
                     "machines too)")
    out.write("\n".join(lines) + "\n")
    out.flush()
