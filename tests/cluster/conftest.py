"""Cluster fixtures: the repository tests run on SQLite and on a real PostgreSQL."""

from tests.pg import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.storage.conftest import db, db_url, repo  # noqa: F401  (fixtures)
