"""Shared fixtures: offline models, a per-test data dir, and a guard against leaked tasks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from app.settings import PROJECT_ROOT, Settings  # noqa: E402
from tests.pg import pg_server, pg_url  # noqa: E402, F401

DATASETS_DIR = PROJECT_ROOT.parent / "shared" / "datasets"


@pytest.fixture
def datasets_dir() -> Path:
    if not DATASETS_DIR.is_dir():
        pytest.skip(f"public datasets not present at {DATASETS_DIR}")
    return DATASETS_DIR


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults with every writable path under the test's tmp dir."""
    return Settings(data_dir=tmp_path / "data", log_json=False)


@pytest_asyncio.fixture(autouse=True)
async def _no_leaked_tasks(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running on its loop (livekit tests/conftest.py).

    Mark a test ``@pytest.mark.allow_leaks`` only where a third-party library owns the task.
    """
    yield
    await asyncio.sleep(0)
    pending = [
        t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()
    ]
    if pending and not request.node.get_closest_marker("allow_leaks"):
        for task in pending:
            task.cancel()
        names = ", ".join(sorted(t.get_name() for t in pending))
        pytest.fail(f"test leaked {len(pending)} asyncio task(s): {names}")
