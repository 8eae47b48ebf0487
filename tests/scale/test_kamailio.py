"""Two ``hotline serve`` nodes behind a real Kamailio on one real PostgreSQL, called by sipp:
calls spread over the nodes, strangers are refused at the edge, a rolling restart (SIGTERM
one node, start it again, then the other) fails no new call, a node killed mid-call loses no
record and gets no new call, and the survivor drains on SIGTERM (one cluster start: the whole
story in one test, to keep CI short)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.storage import CallRepository, Database
from tests.scale.cluster import (
    FORBIDDEN,
    NUMBER,
    Cluster,
    by_node,
    sip_request_status,
    stop_process,
    uac,
)

pytestmark = pytest.mark.scale
HOLD_MS = 60_000  # the long calls: up across the kill and the drain
ROLL_RATE_PER_S, ROLL_HOLD_MS = 2, 1500  # the steady caller during the rolling restart


def _wait(what: str, condition: Callable[[], bool], timeout_s: float = 60) -> float:
    """Poll ``condition`` until true; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.2)
    return time.monotonic() - started


def _up(calls: list[dict[str, Any]], node: str) -> list[str]:
    return [c["id"] for c in calls if c["node_id"] == node and not c["ended_at"]]


def _sipp_counts(work: Path) -> tuple[int, int]:
    """(successful, failed) calls from sipp's last statistics dump."""
    out = (work / "sipp.out").read_text(errors="replace")
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    assert ok and failed, f"no sipp statistics in its output: {out[-3000:]}"
    return int(ok[-1]), int(failed[-1])


def _restart(cluster: Cluster, name: str) -> None:
    node = cluster.nodes[name]
    node.proc.send_signal(signal.SIGTERM)  # drain: calls up finish, then exit 0
    assert node.proc.wait(120) == 0, f"{name} did not drain and exit cleanly"
    cluster.restart(name)
    uri = cluster.node_uri(name)
    _wait(f"Kamailio took {name} back",
          lambda: cluster.kamailio.dispatcher().get(uri, "").startswith("A"))
    served = by_node(cluster.calls()).get(name, 0)
    _wait(f"new calls on the restarted {name}",
          lambda: by_node(cluster.calls()).get(name, 0) >= served + 2)


def _roll(cluster: Cluster) -> int:
    """A rolling restart under a steady caller: each node in turn gets SIGTERM (drains and
    exits 0), starts again, is taken back by Kamailio and takes new calls. Not one new call
    may fail; returns how many were placed."""
    work = cluster.tmp / "steady-caller"
    caller = cluster.sipp(uac(ROLL_HOLD_MS), 100_000, "-r", str(ROLL_RATE_PER_S), "-l", "60",
                          timeout_s=900, background=True, work=work)
    try:
        for name in ("node-a", "node-b"):
            _restart(cluster, name)
    finally:
        caller.send_signal(signal.SIGUSR1)  # sipp: no new call, the calls up finish
        try:
            caller.wait(120)
        finally:
            stop_process(caller, signal.SIGKILL)
    ok, failed = _sipp_counts(work)
    assert caller.returncode == 0 and failed == 0, (
        f"{failed} new calls failed during the roll: "
        + (work / "sipp.out").read_text(errors="replace")[-3000:])
    return ok


@pytest.mark.timeout(900)  # three node starts in one story; a loaded box is slow to start
def test_two_nodes_behind_kamailio_spread_roll_fail_over_and_drain(cluster: Cluster) -> None:
    # 1. new calls spread round-robin; a stranger's INVITE is refused at the edge
    result = cluster.sipp(uac(500), 6, "-r", "3", "-l", "6")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert by_node(cluster.calls()) == {"node-a": 3, "node-b": 3}
    _wait("the short calls ended", lambda: all(c["ended_at"] for c in cluster.calls()))
    assert {c["outcome"] for c in cluster.calls()} == {"abandoned"}  # hung up while queued
    refused = cluster.sipp(FORBIDDEN, 1, local_ip="127.0.0.2")  # not on the trunk list
    assert refused.returncode == 0, refused.stdout[-6000:]
    assert len(cluster.calls()) == 6  # no node saw it

    # 2. rolling restart, node by node, under a steady caller: no new call fails
    rolled = _roll(cluster)
    assert rolled >= 8
    # the record writer stores in the background: the roll's last call may land a moment
    # after sipp counted it; then every call is on record and no stray one
    _wait("every call of the roll on record", lambda: len(cluster.calls()) >= 6 + rolled)
    assert len(cluster.calls()) == 6 + rolled
    _wait("the roll's calls ended", lambda: all(c["ended_at"] for c in cluster.calls()))
    assert {c["outcome"] for c in cluster.calls()} == {"abandoned"}

    # 3. four long calls, two on each node; then node-b is killed (-9) with its calls up
    long_calls = cluster.sipp(uac(HOLD_MS), 4, "-r", "4", "-l", "4", background=True)
    try:
        _wait("two long calls up on each node", lambda: (
            len(_up(cluster.calls(), "node-a")), len(_up(cluster.calls(), "node-b"))) == (2, 2))
        on_b = _up(cluster.calls(), "node-b")
        on_a = _up(cluster.calls(), "node-a")
        cluster.nodes["node-b"].proc.send_signal(signal.SIGKILL)
        cluster.nodes["node-b"].proc.wait(30)

        # 4. the survivor finalizes node-b's calls within 30 s, their events kept
        took_s = _wait("node-b's calls finalized", lambda: not _up(cluster.calls(), "node-b"),
                       timeout_s=30)
        print(f"node-b's calls finalized {took_s:.1f} s after kill -9")
        api = cluster.api("node-a")
        for call_id in on_b:
            detail = api.detail(call_id)
            assert detail["cdr"]["outcome"] == "interrupted"
            types = [e["type"] for e in detail["events"]]
            assert types[0] == "call_started" and types[-1] == "call_ended"
            assert detail["events"][-1]["payload"]["lost_node"] == "node-b"
            assert detail["events"][-1]["payload"]["finalized_by"] == "node-a"
        assert set(_up(cluster.calls(), "node-a")) == set(on_a)  # node-a's calls go on

        # 5. Kamailio stops sending new calls to node-b: they all land on node-a
        b_uri = f"sip:127.0.0.1:{cluster.nodes['node-b'].sip_port}"
        _wait("Kamailio marked node-b down",
              lambda: cluster.kamailio.dispatcher().get(b_uri, "A").startswith(("I", "T")))
        before = {c["id"] for c in cluster.calls()}
        again = cluster.sipp(uac(300), 4, "-r", "4", "-l", "4")
        assert again.returncode == 0, again.stdout[-6000:]
        fresh = [c for c in cluster.calls() if c["id"] not in before]
        assert len(fresh) == 4 and {c["node_id"] for c in fresh} == {"node-a"}

        # 6. SIGTERM node-a: it drains (no new call, not ready), its long calls finish
        node_a = cluster.nodes["node-a"]
        assert len(_up(cluster.calls(), "node-a")) >= 2, "the long calls ended too early"
        node_a.proc.send_signal(signal.SIGTERM)
        _wait("node-a not ready", lambda: httpx.get(f"{node_a.url}/readyz", timeout=10)
              .status_code == 503)
        ready = httpx.get(f"{node_a.url}/readyz", timeout=10).json()
        assert "draining" in ready["problems"]
        assert sip_request_status(node_a.sip_port, "OPTIONS") == 503
        offer = httpx.post(f"{node_a.url}/v1/webrtc/offer", timeout=10, json={
            "sdp": "v=0\r\n", "type": "offer", "hotline_number": NUMBER})
        assert offer.status_code == 503 and int(offer.headers["Retry-After"]) > 0
        assert node_a.proc.poll() is None  # still up: its calls are not over
        node_a.proc.wait(HOLD_MS / 1000 + 90)
        assert node_a.proc.returncode == 0
    finally:
        stop_process(long_calls)

    # 7. no record lost: 14 calls + the roll's, all ended; node-a's long calls by the caller
    db = Database(cluster.db_url)
    try:
        page = CallRepository(db).list_calls(limit=500)
    finally:
        db.dispose()
    assert page.total == 14 + rolled and all(c.ended_at is not None for c in page.items)
    outcomes = {c.id: c.outcome for c in page.items}
    assert {outcomes[c] for c in on_a} == {"abandoned"}  # finished during the drain
    assert {outcomes[c] for c in on_b} == {"interrupted"}
