"""The multi-node fixture: two real ``hotline serve`` nodes on one real PostgreSQL, behind a
real Kamailio, all on 127.0.0.1 and all stopped after the test (``tests/scale/cluster.py``
launches them; ``bench/scale.py`` uses the same launcher)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.tools import require_tool
from tests.pg import PgServer, pg_server  # noqa: F401  (fixture)
from tests.scale.cluster import Cluster, running_cluster


@pytest.fixture
def cluster(tmp_path: Path, pg_server: PgServer) -> Iterator[Cluster]:  # noqa: F811
    """Two nodes (node-a, node-b) on one PostgreSQL database behind Kamailio."""
    for tool in ("sipp", "kamailio", "kamcmd"):
        require_tool(tool)
    with running_cluster(tmp_path, pg_server.create_database()) as running:
        yield running
