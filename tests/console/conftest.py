"""Console fixtures: every report test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.storage import CallRepository, Database
from tests.pg import pg_server, pg_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'hotline.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def repo(db: Database) -> CallRepository:
    return CallRepository(db)
