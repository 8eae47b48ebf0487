"""Scale figures on loopback: two ``hotline serve`` nodes behind a real Kamailio, one real
PostgreSQL, and (in the second run) one real Redis; sipp places the calls. The cluster is
launched by ``tests/scale/cluster.py`` (the multi-node tests' launcher).

    python -m bench.scale [--calls 120] [--rate 10] [--rates 10,20,40,80,160]

Run 1 (no Redis, the baseline) and run 2 (Redis: live events and rate limits shared):
  - cost per call: ``--calls`` calls at ``--rate``/s through Kamailio (keypad-only hold flow:
    set-up, queued, caller hangs up after 1 s): CPU ms per call of the nodes, Kamailio,
    PostgreSQL and Redis (from /proc and INFO), PostgreSQL commits and Redis XADDs per call.
  - set-up rate across 2 nodes: sipp at rising rates, 5 s each; the highest with 0 failures.
Run 2 only:
  - Kamailio's added set-up latency: INVITE -> 200 OK time, sipp straight to node-a vs
    through Kamailio, interleaved rounds in the same run.
  - recovery after kill -9: two long calls on each node, node-b killed while a steady caller
    keeps placing calls: time until Kamailio stops sending it calls, time until its calls
    are finalized by node-a (1 s heartbeats, 5 s staleness), failed new calls meanwhile.
Speech (Vosk) is not in these calls: per-node concurrent-call capacity with speech is
``bench.call_turns`` (16 on 2 cores); these figures are what the shared parts cost per call.
"""

from __future__ import annotations

import argparse
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

from tests.helpers.redis_server import RedisServer
from tests.helpers.server import free_port
from tests.pg import PgServer, acquire_server, release_server
from tests.scale.cluster import Cluster, by_node, running_cluster, stop_process, uac

TICK_S = 1 / 100  # /proc CPU times are in clock ticks (USER_HZ, 100 on Linux)
BENCH_ENV = {"HOTLINE_MAX_CALLS": "400", "HOTLINE_SIP_MAX_CALLS": "400",
             "HOTLINE_LOG_LEVEL": "WARNING"}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if values \
        else float("nan")


def _proc_cpu_s(pid: int, children_too: bool = True) -> float:
    """CPU seconds of a process (and of its children it has reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children_too:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks * TICK_S


def _tree_cpu_s(root: int) -> float:
    """CPU seconds of a process, its reaped children, and its live children (PostgreSQL
    backends, Kamailio workers)."""
    total = _proc_cpu_s(root)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == root:
            total += _proc_cpu_s(int(stat.parent.name), children_too=False)
    return total


class Meter:
    """CPU and operation counters of every part, read before and after a batch of calls."""

    def __init__(self, cluster: Cluster, pg: PgServer, redis_url: str | None) -> None:
        self.cluster = cluster
        self.pg_pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        self.db = cluster.db_url.replace("postgresql+psycopg://", "postgresql://")
        self.redis = redis.Redis.from_url(redis_url) if redis_url else None

    def read(self) -> dict[str, float]:
        nodes = sum(_proc_cpu_s(n.proc.pid) for n in self.cluster.nodes.values())
        with psycopg.connect(self.db) as conn:
            row = conn.execute("SELECT xact_commit FROM pg_stat_database "
                               "WHERE datname = current_database()").fetchone()
            events = conn.execute("SELECT count(*) FROM call_events").fetchone()
        figures = {"nodes_s": nodes, "kamailio_s": _tree_cpu_s(self.cluster.kamailio.proc.pid),
                   "pg_s": _tree_cpu_s(self.pg_pid), "commits": float(row[0] if row else 0),
                   "events": float(events[0] if events else 0), "redis_s": 0.0, "xadd": 0.0}
        if self.redis is not None:
            cpu = self.redis.info("cpu")
            stats = self.redis.info("commandstats")
            figures["redis_s"] = float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])
            figures["xadd"] = float(stats.get("cmdstat_xadd", {}).get("calls", 0))
        return figures


def _wait(condition: Callable[[], bool], timeout_s: float = 120) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"not reached within {timeout_s} s")
        time.sleep(0.2)
    return time.monotonic() - started


def _all_ended(cluster: Cluster) -> bool:
    return all(c["ended_at"] for c in cluster.calls())


def cost_per_call(cluster: Cluster, meter: Meter, calls: int, rate: int) -> dict[str, float]:
    _wait(lambda: _all_ended(cluster))
    time.sleep(3)  # let heartbeats and the bus settle; both go on during the batch as well
    before = meter.read()
    result = cluster.sipp(uac(1000), calls, "-r", str(rate), "-l", str(calls))
    if result.returncode != 0:
        raise RuntimeError("sipp failed in the cost batch: " + result.stdout[-3000:])
    _wait(lambda: _all_ended(cluster))
    after = meter.read()
    per_call = {k: (after[k] - before[k]) / calls for k in before}
    return {k: v * 1000 if k.endswith("_s") else v for k, v in per_call.items()}


def _sipp_ok(cluster: Cluster, calls: int, rate: int, hold_ms: int = 0,
             port: int | None = None) -> tuple[bool, list[float]]:
    """Run a batch; (0 failed calls?, the INVITE -> 200 OK times in ms)."""
    work = cluster.tmp / f"batch-{time.monotonic_ns()}"
    result = cluster.sipp(uac(hold_ms), calls, "-r", str(rate), "-l", str(calls),
                          timeout_s=120, port=port, work=work)
    return result.returncode == 0, _rtts(work)


def _rtts(work: Path) -> list[float]:
    values = []
    for csv in work.glob("*_rtt.csv"):
        for line in csv.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:  # Date_ms;response_time_ms;rtd_no
                values.append(float(parts[1]))
    return values


def setup_rates(cluster: Cluster, rates: list[int]) -> list[tuple[int, bool, float]]:
    """(rate, 0 failures?, 200 OK time p95 ms) per offered rate, 5 s at each."""
    rows = []
    for rate in rates:
        _wait(lambda: _all_ended(cluster), timeout_s=300)
        ok, times = _sipp_ok(cluster, rate * 5, rate)
        rows.append((rate, ok, _pct(times, 95)))
        if not ok:
            break
    return rows


def kamailio_latency(cluster: Cluster, rounds: int = 3, calls: int = 20,
                     rate: int = 5) -> tuple[list[float], list[float]]:
    """INVITE -> 200 OK times (ms): sipp straight to node-a, and through Kamailio."""
    direct: list[float] = []
    proxied: list[float] = []
    node_a = cluster.nodes["node-a"].sip_port
    for _ in range(rounds):
        for port, into in ((node_a, direct), (None, proxied)):
            _wait(lambda: _all_ended(cluster))
            ok, times = _sipp_ok(cluster, calls, rate, port=port)
            if not ok:
                raise RuntimeError("a latency batch had failed calls")
            into.extend(times)
    return direct, proxied


def _up(cluster: Cluster, node: str) -> int:
    return sum(1 for c in cluster.calls() if c["node_id"] == node and not c["ended_at"])


def recovery(cluster: Cluster) -> dict[str, float]:
    """kill -9 node-b with two calls up on it, a steady caller (4/s) placing calls."""
    _wait(lambda: _all_ended(cluster))
    long_calls = cluster.sipp(uac(120_000), 4, "-r", "4", "-l", "4", background=True)
    steady_dir = cluster.tmp / "steady"
    try:
        _wait(lambda: _up(cluster, "node-a") >= 2 and _up(cluster, "node-b") >= 2)
        steady = cluster.sipp(uac(500), 100_000, "-r", "4", "-l", "100", background=True,
                              work=steady_dir, timeout_s=600)
        try:
            time.sleep(2)  # the steady caller under way
            marked, finalized = _kill_node_b(cluster)
        finally:
            steady.send_signal(signal.SIGUSR1)  # no new call; the calls up finish
            try:
                steady.wait(60)
            finally:
                stop_process(steady, signal.SIGKILL)
    finally:
        stop_process(long_calls, signal.SIGKILL)
    out = (steady_dir / "sipp.out").read_text(errors="replace")
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out)
    times = _rtts(steady_dir)
    for log in steady_dir.glob("*_errors.log"):  # why a call failed, for the reader
        reasons = re.findall(r"(Aborting call[^\n]*|[^\n]*[Tt]imeout[^\n]*)",
                             log.read_text(errors="replace"))
        print("  steady caller's failures: " + "; ".join(r[:160] for r in reasons[:3]))
    return {"marked_down_s": marked, "finalized_s": finalized,
            "steady_failed": float(failed[-1]) if failed else float("nan"),
            "steady_max_setup_ms": max(times) if times else float("nan")}


def _kill_node_b(cluster: Cluster) -> tuple[float, float]:
    """kill -9 node-b; (s until Kamailio marks it down, s until its calls are finalized)."""
    b_uri = cluster.node_uri("node-b")
    killed = time.monotonic()
    cluster.nodes["node-b"].proc.send_signal(signal.SIGKILL)
    cluster.nodes["node-b"].proc.wait(30)
    marked: float | None = None
    finalized: float | None = None
    while marked is None or finalized is None:
        if time.monotonic() - killed > 90:
            raise RuntimeError("node-b's loss was not handled within 90 s")
        now = time.monotonic() - killed
        if marked is None and cluster.kamailio.dispatcher().get(b_uri, "A").startswith(("I", "T")):
            marked = now
        if finalized is None and _up(cluster, "node-b") == 0:
            finalized = now
        time.sleep(0.1)
    time.sleep(3)  # calls placed around the mark, tried on node-b first, finish failover
    return marked, finalized


@contextmanager
def _cluster(tmp: Path, pg: PgServer, redis_url: str | None) -> Iterator[Cluster]:
    env = dict(BENCH_ENV, **({"HOTLINE_REDIS_URL": redis_url} if redis_url else {}))
    with running_cluster(tmp, pg.create_database(), env=env) as cluster:
        yield cluster


def _print_cost(label: str, cost: dict[str, float]) -> None:
    print(f"  {label}: CPU ms per call: nodes {cost['nodes_s']:.1f}, "
          f"Kamailio {cost['kamailio_s']:.2f}, PostgreSQL {cost['pg_s']:.1f}, "
          f"Redis {cost['redis_s']:.2f}; per call: {cost['events']:.1f} events, "
          f"{cost['commits']:.1f} PostgreSQL commits, {cost['xadd']:.1f} XADDs", flush=True)


def _print_rates(label: str, rows: list[tuple[int, bool, float]]) -> None:
    print(f"  {label} set-up rate across 2 nodes (5 s each; 200 OK p95): " + ", ".join(
        f"{r}/s {'ok' if ok else 'FAILED'} {p95:.0f} ms" for r, ok, p95 in rows))
    best = [r for r, ok, _ in rows if ok]
    print(f"  {label} highest set-up rate with 0 failures: {max(best) if best else 0}/s",
          flush=True)


def run(tmp: Path, pg: PgServer, redis_url: str | None, args: argparse.Namespace) -> None:
    label = "with Redis" if redis_url else "no Redis"
    started = time.monotonic()
    with _cluster(tmp / label.replace(" ", "-"), pg, redis_url) as cluster:
        print(f"[{label}] 2 nodes + Kamailio up in {time.monotonic() - started:.0f} s",
              flush=True)
        cost = cost_per_call(cluster, Meter(cluster, pg, redis_url), args.calls, args.rate)
        _print_cost(label, cost)
        print(f"  calls per node: {by_node(cluster.calls())}", flush=True)
        _print_rates(label, setup_rates(cluster, [int(r) for r in args.rates.split(",")]))
        if redis_url is None:
            return
        direct, proxied = kamailio_latency(cluster)
        print(f"  INVITE->200 OK ms, straight to a node p50/p95 {_pct(direct, 50):.1f}/"
              f"{_pct(direct, 95):.1f} ({len(direct)} calls); through Kamailio "
              f"{_pct(proxied, 50):.1f}/{_pct(proxied, 95):.1f} ({len(proxied)}); Kamailio "
              f"adds {_pct(proxied, 50) - _pct(direct, 50):.1f} ms at p50", flush=True)
        lost = recovery(cluster)
        print(f"  kill -9 node-b: Kamailio stopped sending it calls after "
              f"{lost['marked_down_s']:.1f} s (1 s OPTIONS), its calls finalized after "
              f"{lost['finalized_s']:.1f} s (1 s beats, 5 s stale); steady caller 4/s: "
              f"{lost['steady_failed']:.0f} failed, slowest set-up "
              f"{lost['steady_max_setup_ms']:.0f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=120)
    parser.add_argument("--rate", type=int, default=10)
    parser.add_argument("--rates", default="10,20,40,80,160")
    args = parser.parse_args()
    pg = acquire_server()
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            run(tmp, pg, None, args)
            (tmp / "redis").mkdir()
            server = RedisServer(tmp / "redis", free_port())
            server.start()
            try:
                run(tmp, pg, server.url, args)
            finally:
                server.stop()
    finally:
        release_server()


if __name__ == "__main__":
    main()
