"""Migrations: an empty database gets the schema the models describe; re-running is a no-op."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from setuptools import find_packages
from sqlalchemy import inspect, text

from app.settings import PROJECT_ROOT, Settings
from app.storage import CallRepository, Database
from app.storage.db import MIGRATIONS_DIR
from app.storage.models import Base

TABLES = {"alembic_version", "calls", "call_events", "recordings", "node_heartbeats"}
ROUTING_TABLES = {
    "routing_calendars", "routing_agents", "routing_groups", "routing_group_members",
    "routing_hotlines", "routing_rules", "routing_meta",
}
HEAD = "0007"  # the newest revision shipped
AUTH_TABLES = {"users", "auth_sessions", "api_tokens", "audit_log",
               "report_hourly", "report_rollup_state"}  # and the reports' roll-ups (0007)


def test_migrate_empty_database_then_rerun_is_a_noop(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert db.ping() is not None and "migrations not run" in (db.ping() or "")
        db.migrate()
        assert db.ping() is None
        assert db.current_revision() == db.head_revision == HEAD
        assert set(inspect(db.engine).get_table_names()) == TABLES | ROUTING_TABLES | AUTH_TABLES
        indexed = {
            tuple(ix["column_names"]) for ix in inspect(db.engine).get_indexes("calls")
        }
        for column in ("started_at", "hotline_number", "outcome", "final_intent"):
            assert (column,) in indexed

        repo = CallRepository(db)
        now = datetime.now(UTC)
        repo.start_call("kept", "400", "+1555", "sip", "en", now)
        repo.append_event("kept", {"type": "call_started"}, now)
        db.migrate()  # second start of the server
        assert db.current_revision() == HEAD
        assert [e.seq for e in repo.events("kept")] == [1]
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert rows == [(HEAD,)]
    finally:
        db.dispose()


def test_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_sqlite_pragmas_and_default_location(settings: Settings) -> None:
    assert not settings.data_dir.exists()
    db = Database.from_settings(settings)
    try:
        assert settings.data_dir.is_dir()  # created for the SQLite file
        db.migrate()
        assert (settings.data_dir / "hotline.db").is_file()
        with db.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
        assert pragma == {
            "journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": 2
        }
    finally:
        db.dispose()


def test_migrations_ship_inside_the_package() -> None:
    """env.py, the template and the revisions are in packages setuptools installs."""
    packages = set(find_packages(where=str(PROJECT_ROOT), include=["app*"]))
    assert {"app.storage.migrations", "app.storage.migrations.versions"} <= packages
    assert MIGRATIONS_DIR == Path(__file__).resolve().parents[2] / "app/storage/migrations"
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()  # package-data "*.mako"


def test_two_processes_starting_at_once_both_migrate(db_url: str) -> None:
    """Two nodes (or a restart overlapping the old process) run migrate() together."""
    code = "import sys; from app.storage import Database; Database(sys.argv[1]).migrate()"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", code, db_url], cwd=PROJECT_ROOT, env=env,
            stderr=subprocess.PIPE, text=True,
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    db = Database(db_url)
    try:
        assert db.ping() is None
    finally:
        db.dispose()
