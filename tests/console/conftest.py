"""Console fixtures: report tests on SQLite and on a real PostgreSQL; one real ``hotline
serve`` (its own process) for the API, page and browser tests, with the hand-made day of
calls (``tests/console/calls.py``) written into its database and a user per role."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.auth import Role
from app.settings import PROJECT_ROOT
from app.storage import CallRepository, Database
from tests.console.calls import write_day
from tests.helpers.auth import SignedIn, sign_in_as_each_role
from tests.helpers.server import free_port, serve_ko, wait_ready
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


@dataclass
class Console:
    url: str
    tmp: Path
    intents: Path
    roles: dict[Role, SignedIn]

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.tmp.glob("server-*.log"))


YESTERDAY = "y"  # the inbox API test's calls
DAY_BEFORE = "z"  # the browser test's calls


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A real server (no speech or intent model: it starts fast) with the hand-made day on
    2026-11-26 (calls c1..c5), again yesterday (yc1..) and the day before (zc1..), a
    recording of c3, and a signed-in user per role."""
    tmp = tmp_path_factory.mktemp("console")
    intents = tmp / "intents"
    shutil.copytree(PROJECT_ROOT / "intents", intents)
    (tmp / "no-seed").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = serve_ko(tmp, port, HOTLINE_ASR_MODELS="{}", HOTLINE_LOG_JSON="false",
                    HOTLINE_INTENT_MODEL_DIR=str(tmp / "no-intent-model"),
                    HOTLINE_MODELS_SEED_DIR=str(tmp / "no-seed"),
                    HOTLINE_INTENTS_DIR=str(intents), HOTLINE_AUTH_LOGIN_RATE="1000/minute",
                    # the monitor's browser test sees a waiting caller's alert
                    HOTLINE_ALERT_HOLD_MAX_S="1", HOTLINE_ALERT_CHECK_EVERY_S="0.5")
    try:
        asyncio.run(wait_ready(url, proc))
        db = Database(f"sqlite:///{tmp / 'data' / 'hotline.db'}")
        repo = CallRepository(db)
        write_day(repo)
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        write_day(repo, today - timedelta(days=1), prefix=YESTERDAY)
        write_day(repo, today - timedelta(days=2), prefix=DAY_BEFORE)
        recordings = tmp / "data" / "recordings"
        recordings.mkdir(parents=True, exist_ok=True)
        (recordings / "c3.wav").write_bytes(b"RIFF")
        repo.add_recording("c3", "c3.wav", 40.0, True)
        db.dispose()

        async def sign_in() -> dict[Role, SignedIn]:
            async with httpx.AsyncClient(timeout=60) as client:
                return await sign_in_as_each_role(client, url)

        yield Console(url, tmp, intents, asyncio.run(sign_in()))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = "\n".join(p.read_text(errors="replace") for p in tmp.glob("server-*.log"))
    assert "Traceback" not in log, log[-4000:]
