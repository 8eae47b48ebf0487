"""The routing configuration in the database, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.routing.config import RoutingConfig
from app.routing.loader import RoutingFileError, load_file
from app.routing.store import RoutingStore, ensure_seeded
from app.storage import Database
from app.storage.models import RoutingAgentRow, RoutingMemberRow, RoutingRuleRow
from tests.helpers.routing import DEMO
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


def count(db: Database, row: type) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(row)) or 0)


def test_save_then_load_gives_back_the_same_configuration(db: Database) -> None:
    store = RoutingStore(db)
    assert store.is_empty() and store.load() is None
    config = load_file(DEMO)
    summary = store.save(config, source="demo")
    assert summary is not None and summary.line() == \
        "9 agent(s), 4 group(s), 1 hotline(s), 8 rule(s)"
    assert store.load() == config
    assert count(db, RoutingRuleRow) == 8 and count(db, RoutingMemberRow) == 12
    info = store.summary()
    assert info is not None and info.source == "demo" and info.imported_at


def test_an_import_replaces_everything(db: Database) -> None:
    store = RoutingStore(db)
    store.save(load_file(DEMO), source="demo")
    small = RoutingConfig.model_validate({
        "agents": {"solo": {"name": "Solo", "languages": ["en"]}},
        "groups": {"only": {"members": ["solo"], "strategy": "ring_all"}},
        "hotlines": [{"number": "8005550100", "default": {"group": "only"}}],
    })
    store.save(small, source="small.yaml")
    assert store.load() == small
    assert count(db, RoutingAgentRow) == 1 and count(db, RoutingRuleRow) == 0


def test_an_invalid_configuration_is_refused_and_the_old_one_stays(db: Database) -> None:
    store = RoutingStore(db)
    config = load_file(DEMO)
    store.save(config, source="demo")
    broken = config.model_copy(update={"groups": {**config.groups, "zh_service": config.groups[
        "zh_service"].model_copy(update={"overflow": None, "calendar": "nonexistent"})}})
    with pytest.raises(ValueError, match="unknown calendar 'nonexistent'"):
        store.save(broken, source="broken")
    assert store.load() == config


def test_ensure_seeded_imports_once(db: Database, tmp_path: Path) -> None:
    summary = ensure_seeded(db, DEMO)
    assert summary is not None and summary.agents == 9
    assert ensure_seeded(db, DEMO) is None  # routing is there: left alone
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents: {x: {name: X}}\n", encoding="utf-8")
    assert ensure_seeded(db, bad) is None  # not even read when routing exists


def test_a_bad_seed_file_imports_nothing(db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents:\n  x: {name: X}\n", encoding="utf-8")
    with pytest.raises(RoutingFileError, match=r"bad.yaml:2: .*languages"):
        ensure_seeded(db, bad)
    assert RoutingStore(db).is_empty()
