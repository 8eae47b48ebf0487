"""A real, private PostgreSQL server for the test session.

``initdb`` + ``pg_ctl`` found by ``find_pg_bin`` (PATH, pg_config; override with
``HOTLINE_PG_BIN``) in a temp dir, listening on a free 127.0.0.1 port, trust auth, fsync off.
PostgreSQL refuses to run as root: when the tests run as root, the server runs as the
``postgres`` system user (``runuser -u postgres --``) in a temp dir owned by that user.

Fixtures (import them into a conftest):
- ``pg_server`` (session): the running ``PgServer``; skips when the binaries are absent
  (fails in CI: the Makefile installs them).
- ``pg_url`` (function): a fresh empty database for one test, dropped afterwards;
  its SQLAlchemy URL ``postgresql+psycopg://postgres@127.0.0.1:PORT/NAME``.

One server per process however many conftests import the fixtures (reference-counted),
stopped when the last user is done, or at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers.tools import missing


def find_pg_bin() -> Path:
    """Where ``initdb``/``pg_ctl``/``postgres`` are: ``HOTLINE_PG_BIN``, else ``initdb`` on
    PATH, else ``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``."""
    if os.environ.get("HOTLINE_PG_BIN"):
        return Path(os.environ["HOTLINE_PG_BIN"])
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidate = Path(out.stdout.strip())
        if out.returncode == 0 and (candidate / "initdb").is_file():
            return candidate
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


PG_BIN = find_pg_bin()
PG_USER = "postgres"


class PgUnavailable(Exception):
    """PostgreSQL binaries (or the user to run them as) are not on this machine."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One running postmaster in its own temp dir."""

    def __init__(self, bin_dir: Path = PG_BIN) -> None:
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not (bin_dir / tool).is_file():
                raise PgUnavailable(
                    f"PostgreSQL binary {bin_dir / tool} not found (apt postgresql)"
                )
        self.bin_dir = bin_dir
        self._prefix: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(PG_USER)
            except KeyError as exc:
                shutil.rmtree(self.root, ignore_errors=True)
                raise PgUnavailable(f"running as root and there is no {PG_USER!r} user") from exc
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", PG_USER, "--"]
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.port = 0
        self._running = False

    def _run(self, *args: str, timeout_s: float = 60) -> None:
        cmd = [*self._prefix, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        if proc.returncode != 0:
            log = ""
            if self.log_file.exists():
                log = self.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}\n{log}"
            )

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", PG_USER,
            "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
        )
        last_error: Exception | None = None
        for _ in range(3):  # a port taken between probing and binding: try another
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run(
                    str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l",
                    str(self.log_file), "-w", "-t", "60", "-o", options, "start",
                    timeout_s=90,
                )
            except RuntimeError as exc:
                last_error = exc
                continue
            self._running = True
            return
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast",
                      "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres", autocommit=True
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_lock = threading.Lock()
_server: PgServer | None = None
_users = 0


def acquire_server() -> PgServer:
    """Start the shared server on first use (raises PgUnavailable if it cannot exist here)."""
    global _server, _users
    with _lock:
        if _server is None:
            server = PgServer()
            try:
                server.start()
            except BaseException:
                server.stop()
                raise
            _server = server
            atexit.register(_stop_at_exit)
        _users += 1
        return _server


def release_server() -> None:
    global _server, _users
    with _lock:
        _users -= 1
        if _users <= 0 and _server is not None:
            server, _server = _server, None
            server.stop()


def _stop_at_exit() -> None:
    global _server
    if _server is not None:
        server, _server = _server, None
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = acquire_server()
    except PgUnavailable as exc:
        missing(f"PostgreSQL ({exc})")
    try:
        yield server
    finally:
        release_server()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url.rsplit("/", 1)[1])
