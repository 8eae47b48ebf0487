"""A lost node's calls are finalized by one survivor; a node's start-up touches only its own
calls; the heartbeat loop does both (real SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cluster.liveness import NodeLiveness
from app.settings import Settings
from app.storage import CallRepository

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _call(repo: CallRepository, call_id: str, node: str | None, events: int = 2) -> None:
    repo.start_call(call_id, "4008001234", "+8613800138000", "sip", "zh", T0, "demo",
                    node_id=node)
    for i in range(events):
        repo.append_event(call_id, {"type": "dtmf", "digit": str(i)},
                          T0 + timedelta(seconds=i + 1))


def _ended_events(repo: CallRepository, call_id: str) -> list[dict[str, object]]:
    detail = repo.get_call(call_id)
    assert detail is not None
    return [e.payload for e in detail.events if e.type == "call_ended"]


def test_a_survivor_finalizes_the_calls_of_a_node_whose_heartbeat_is_stale(
        repo: CallRepository, tmp_path: Path) -> None:
    now = T0 + timedelta(minutes=5)
    repo.heartbeat("node-a", now)
    repo.heartbeat("node-b", now - timedelta(seconds=16))  # lost: older than 15 s
    repo.heartbeat("node-c", now - timedelta(seconds=5))  # late but alive
    _call(repo, "a-1", "node-a")
    _call(repo, "b-1", "node-b", events=3)
    _call(repo, "b-2", "node-b", events=0)
    _call(repo, "c-1", "node-c")
    repo.append_event("b-2", {"type": "recording_started", "file": "b-2.wav"},
                      T0 + timedelta(seconds=2))
    with wave.open(str(tmp_path / "b-2.wav"), "wb") as w:  # what node-b had written
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000 * 3)

    lost = repo.finalize_lost_nodes(
        now, survivor="node-a", stale_after_s=15,
        recording_duration=lambda f: 3.0 if (tmp_path / f).is_file() else None)

    assert {k: sorted(v) for k, v in lost.items()} == {"node-b": ["b-1", "b-2"]}
    b1 = repo.get_call("b-1")
    assert b1 is not None and b1.cdr.outcome == "interrupted" and b1.cdr.node_id == "node-b"
    assert b1.cdr.ended_at == T0 + timedelta(seconds=3)  # its last stored event
    assert [e.type for e in b1.events] == ["dtmf", "dtmf", "dtmf", "call_ended"]
    (ended,) = _ended_events(repo, "b-1")
    assert ended["lost_node"] == "node-b" and ended["finalized_by"] == "node-a"
    b2 = repo.get_call("b-2")
    assert b2 is not None and [(r.path, r.duration_s) for r in b2.recordings] == [
        ("b-2.wav", 3.0)]
    for alive in ("a-1", "c-1"):  # the other nodes' calls go on
        detail = repo.get_call(alive)
        assert detail is not None and detail.cdr.ended_at is None
    assert set(repo.nodes()) == {"node-a", "node-c"}  # node-b is forgotten: done once
    assert repo.finalize_lost_nodes(now, survivor="node-c", stale_after_s=15) == {}


def test_a_survivor_never_judges_itself(repo: CallRepository) -> None:
    now = T0 + timedelta(minutes=5)
    repo.heartbeat("node-a", now - timedelta(minutes=1))  # its own beat is old (a pause)
    _call(repo, "a-1", "node-a")
    assert repo.finalize_lost_nodes(now, survivor="node-a", stale_after_s=15) == {}
    with pytest.raises(ValueError, match="stale_after_s must be > 0"):
        repo.finalize_lost_nodes(now, survivor="node-a", stale_after_s=0)


def test_many_survivors_at_once_finalize_each_lost_call_once(repo: CallRepository) -> None:
    now = T0 + timedelta(minutes=5)
    for node in ("lost-1", "lost-2", "lost-3"):
        repo.heartbeat(node, now - timedelta(minutes=1))
        for i in range(5):
            _call(repo, f"{node}-{i}", node, events=1)
    results: list[dict[str, list[str]]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def survivor(name: str) -> None:
        try:
            start.wait(30)
            results.append(repo.finalize_lost_nodes(now, survivor=name, stale_after_s=15))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=survivor, args=(f"node-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    finalized = [c for r in results for ids in r.values() for c in ids]
    assert sorted(finalized) == sorted(f"{n}-{i}" for n in ("lost-1", "lost-2", "lost-3")
                                       for i in range(5))
    for call_id in finalized:
        assert len(_ended_events(repo, call_id)) == 1


def test_a_start_up_finalizes_its_own_and_unowned_calls_only(repo: CallRepository) -> None:
    _call(repo, "mine", "node-a")
    _call(repo, "legacy", None)
    _call(repo, "theirs", "node-b")
    done = repo.finalize_interrupted(T0 + timedelta(minutes=1), node_id="node-a",
                                     unowned_too=True)
    assert sorted(done) == ["legacy", "mine"]
    theirs = repo.get_call("theirs")
    assert theirs is not None and theirs.cdr.ended_at is None


async def test_the_heartbeat_loop_writes_beats_and_reaps_lost_nodes(
        repo: CallRepository, tmp_path: Path) -> None:
    clock = [T0]
    settings = Settings(data_dir=tmp_path, node_id="node-a", node_heartbeat_s=1,
                        node_stale_after_s=10)
    liveness = NodeLiveness(repo, settings, clock=lambda: clock[0])
    told: list[dict[str, list[str]]] = []

    async def on_lost(lost: dict[str, list[str]]) -> None:  # the routing lets them go
        told.append(lost)
        raise RuntimeError("redis down")  # logged: the sweep's result stands

    liveness.on_lost = on_lost
    repo.heartbeat("node-b", T0)
    _call(repo, "b-1", "node-b")
    assert await liveness.tick() == {}  # node-b's beat is fresh
    assert told == []
    clock[0] = T0 + timedelta(seconds=11)
    assert await liveness.tick() == {"node-b": ["b-1"]}
    assert told == [{"node-b": ["b-1"]}]
    assert repo.nodes() == {"node-a": clock[0]}
    assert await liveness.tick() == {} and len(told) == 1  # told once
