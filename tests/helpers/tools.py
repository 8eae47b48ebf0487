"""Tools the Makefile installs: missing ones skip a test on a developer's machine, and fail
it in CI (``CI=true``), where a skip would hide that the test never ran."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Skip (or, in CI, fail) because ``what`` is missing."""
    if in_ci():
        pytest.fail(f"{what} is missing in CI: the Makefile installs it")
    pytest.skip(f"{what} is not installed")


def require_tool(name: str) -> str:
    """The path of command ``name``, else skip/fail."""
    path = shutil.which(name)
    if path is None:
        missing(f"command {name!r}")
    return str(path)


def needs(present: bool, what: str) -> pytest.MarkDecorator:
    """A marker: skip when ``what`` is missing on a developer's machine; in CI never skip
    (the test then fails on the missing tool, which the Makefile should have installed)."""
    return pytest.mark.skipif(not present and not in_ci(), reason=f"{what} is not installed")


def delete_sqlite_files(db_file: Path) -> None:
    """Delete a SQLite database and its WAL files (a database lost under a running server)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
