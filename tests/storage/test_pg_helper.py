"""tests/pg.py: one private PostgreSQL server per session, a fresh database per test."""

from __future__ import annotations

import psycopg

from tests.pg import PgServer, acquire_server, release_server


def test_each_test_gets_its_own_empty_database(pg_server: PgServer, pg_url: str) -> None:
    assert pg_url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{pg_server.port}/t_")
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(host="127.0.0.1", port=pg_server.port, user="postgres", dbname=name) as c:
        tables = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        owner = c.execute("SELECT current_setting('data_directory')").fetchone()
    assert tables == (0,)
    assert owner is not None and str(owner[0]).startswith(str(pg_server.root))


def test_the_server_is_shared_and_outlives_an_extra_user(pg_server: PgServer) -> None:
    assert acquire_server() is pg_server  # a second conftest importing the fixtures
    release_server()
    url = pg_server.create_database()
    pg_server.drop_database(url.rsplit("/", 1)[1])  # still running
