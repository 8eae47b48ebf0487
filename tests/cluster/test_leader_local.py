"""One node (``make run``, no Redis): ``LocalLeadership`` always leads, runs the leader's
jobs, stops leading when closed; ``NodeLiveness`` sweeps only while its node leads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import REGISTRY

from app.cluster.leader import LocalLeadership
from app.cluster.liveness import NodeLiveness
from app.settings import Settings
from app.storage import CallRepository, Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _gauge(node_id: str) -> float | None:
    return REGISTRY.get_sample_value("hotline_cluster_leader", {"node_id": node_id})


async def test_a_lone_node_always_leads_until_closed() -> None:
    leadership = LocalLeadership("solo-1")
    await leadership.start()
    assert leadership.leading and leadership.leader_id == "solo-1" and _gauge("solo-1") == 1

    async def job() -> str:
        return "swept"

    assert await leadership.run_if_leading(job) == "swept"
    await leadership.aclose()
    assert not leadership.leading and leadership.leader_id is None and _gauge("solo-1") == 0
    assert await leadership.run_if_leading(job) is None  # closed: the job does not run


async def test_liveness_sweeps_only_while_its_node_leads(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hotline.db'}")
    db.migrate()
    try:
        repo = CallRepository(db)
        clock = [T0]
        leadership = LocalLeadership("node-a")
        await leadership.start()
        liveness = NodeLiveness(repo, Settings(data_dir=tmp_path, node_id="node-a"),
                                clock=lambda: clock[0], leadership=leadership)
        repo.heartbeat("node-b", T0 - timedelta(minutes=1))
        repo.start_call("b-1", "4008001234", "+8613800138000", "sip", "zh", T0, "demo",
                        node_id="node-b")
        await leadership.aclose()  # not leading: the beat is written, nobody is judged
        assert await liveness.tick() == {} and liveness.sweeps == 0
        assert repo.nodes()["node-a"] == T0
        detail = repo.get_call("b-1")
        assert detail is not None and detail.cdr.ended_at is None
        leadership = LocalLeadership("node-a")  # leading again
        liveness.leadership = leadership
        await leadership.start()
        assert await liveness.tick() == {"node-b": ["b-1"]} and liveness.sweeps == 1
    finally:
        db.dispose()
