"""Database: engine, sessions, migrations (Alembic, run programmatically) and a readiness ping.

SQLite (the embedded default) runs in WAL mode with foreign keys on, a busy timeout and
``synchronous=FULL`` so a committed event survives a crash of the process or the machine.
Write transactions on SQLite start with ``BEGIN IMMEDIATE`` so concurrent writers queue on
the busy timeout instead of failing on a lock upgrade. PostgreSQL is used by URL
(``postgresql+psycopg://user:pass@host:port/db``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.storage.errors import DatabaseUnavailableError

if TYPE_CHECKING:
    from app.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x486F746C  # "Hotl": serializes migrate() across processes
_WRITE_OPTION = "hotline_write"
# Alembic's ``context``/``op`` are module globals: one migration at a time per process.
_MIGRATE_LOCK = threading.Lock()


def _reason(exc: BaseException) -> str:
    """The driver's own message, on one line (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc)
    return re.sub(r"\s+", " ", message).strip() or type(exc).__name__


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


class Database:
    """One database (SQLite file or PostgreSQL server) and its connection pool."""

    def __init__(
        self, url: str, *, busy_timeout_s: float = 10.0, connect_timeout_s: float = 5.0
    ) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ValueError(f"invalid database URL {url!r}: {exc}") from exc
        self.url: URL = parsed
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite":
            self.engine = self._sqlite_engine(parsed, busy_timeout_s)
        elif self.backend == "postgresql":
            self.engine = create_engine(
                parsed,
                pool_pre_ping=True,
                connect_args={"connect_timeout": max(1, round(connect_timeout_s))},
            )
        else:
            raise ValueError(
                f"unsupported database {self.backend!r} in URL "
                f"{parsed.render_as_string(hide_password=True)}: use sqlite or postgresql"
            )
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._read_sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(bind=self._write_engine, expire_on_commit=False)
        self._head: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The database the settings name (default: ``data_dir/hotline.db``)."""
        return cls(settings.sqlalchemy_url)

    @property
    def where(self) -> str:
        """Where the data lives, for messages: never contains a password."""
        if self.backend == "sqlite":
            return f"SQLite file {self.url.database}"
        port = self.url.port or 5432
        return f"PostgreSQL at {self.url.host or 'localhost'}:{port}/{self.url.database or ''}"

    # -- engines ---------------------------------------------------------------------------

    @staticmethod
    def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise ValueError(
                "in-memory SQLite is not supported (records would be lost): use a file"
            )
        directory = Path(database).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailableError(
                f"cannot create the directory {directory} for the SQLite file: {exc}"
            ) from exc
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
        busy_ms = int(busy_timeout_s * 1000)

        path = Path(database).expanduser()

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, record: Any) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = FULL")
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()
            record.info["inode"] = _inode(path)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
            if immediate and conn.info.get("inode") != _inode(path):
                # SQLite keeps writing into a deleted (or replaced) file: records would be
                # lost when the process ends. Refuse, so writers retry and spool instead.
                conn.invalidate()
                raise DatabaseUnavailableError(
                    f"the SQLite file {path} was deleted or replaced while in use"
                )
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    # -- sessions --------------------------------------------------------------------------

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises.

        ``write=True`` takes the SQLite write lock up front (``BEGIN IMMEDIATE``).
        """
        factory = self._write_sessions if write else self._read_sessions
        with factory.begin() as session:
            yield session

    def begin_write(self) -> AbstractContextManager[Connection]:
        """A Core connection in a write transaction, committed when the block ends."""
        return self._write_engine.begin()

    # -- migrations ------------------------------------------------------------------------

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("path_separator", "os")
        config.set_main_option(
            "sqlalchemy.url", self.url.render_as_string(hide_password=False)
        )
        return config

    @property
    def head_revision(self) -> str | None:
        """The newest migration shipped with this code."""
        if self._head is None:
            self._head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        return self._head

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it is already there."""
        config = self._alembic_config()
        try:
            with _MIGRATE_LOCK, self._write_engine.begin() as conn:
                if self.backend == "postgresql":
                    lock = text("SELECT pg_advisory_xact_lock(:k)")
                    conn.execute(lock, {"k": _PG_MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise DatabaseUnavailableError(
                f"cannot migrate the database ({self.where}): {_reason(exc)}"
            ) from exc

    def current_revision(self) -> str | None:
        """The schema revision stored in the database (None: never migrated)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # -- health ----------------------------------------------------------------------------

    def ping(self) -> str | None:
        """None when the database answers and its schema is current, else the reason."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                current = MigrationContext.configure(conn).get_current_revision()
        except SQLAlchemyError as exc:
            return f"database unreachable ({self.where}): {_reason(exc)}"
        if current != self.head_revision:
            return (
                f"database schema at revision {current or 'none'}, "
                f"expected {self.head_revision} ({self.where}): migrations not run"
            )
        return None

    def dispose(self) -> None:
        """Close every pooled connection (call at shutdown)."""
        self.engine.dispose()
