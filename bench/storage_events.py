"""Event-log write cost: ``append_event`` latency and throughput with N concurrent calls.

    .venv/bin/python -m bench.storage_events [--calls 10] [--events 100] [--pg]

Compares, in the same run, group commit (concurrent appends share one transaction) with a
baseline of one commit per event, on SQLite with Hotline's settings (WAL,
``synchronous=FULL``: an event is on disk when ``append_event`` returns), on SQLite with
``synchronous=NORMAL`` (survives a process crash, not a power loss), and with ``--pg`` on a
private PostgreSQL server (tests/pg.py; fsync off there: protocol cost, not the disk).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from app.storage import CallRepository, Database
from app.storage.eventlog import MAX_BATCH


def _run(db: Database, calls: int, events: int, max_batch: int) -> dict[str, float]:
    db.migrate()
    repo = CallRepository(db, max_event_batch=max_batch)
    latencies: list[float] = []
    lock = threading.Lock()

    def call(n: int) -> None:
        call_id = f"bench-{n}-{time.monotonic_ns()}"
        repo.start_call(call_id, "400", "+8613800138000", "webrtc", "zh", datetime.now(UTC))
        mine: list[float] = []
        for i in range(events):
            t = time.perf_counter()
            repo.append_event(call_id, {"type": "transcript", "text": f"w{i}"}, datetime.now(UTC))
            mine.append(time.perf_counter() - t)
        repo.end_call(call_id, "completed", datetime.now(UTC))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(calls)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall_s = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {"p50_ms": q[49] * 1e3, "p95_ms": q[94] * 1e3, "events_per_s": len(latencies) / wall_s}


def _sqlite(path: Path, synchronous: str | None = None) -> Database:
    db = Database(f"sqlite:///{path}")
    if synchronous is not None:
        @event.listens_for(db.engine, "connect")
        def _override(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA synchronous = {synchronous}")
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=10, help="concurrent calls (threads)")
    parser.add_argument("--events", type=int, default=100, help="events per call")
    parser.add_argument("--pg", action="store_true", help="also a private PostgreSQL server")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        cases: list[tuple[str, Callable[[], Database], int]] = [
            ("sqlite FULL, commit per event (baseline)", lambda: _sqlite(tmp_dir / "b.db"), 1),
            ("sqlite FULL, group commit (hotline)", lambda: _sqlite(tmp_dir / "f.db"), MAX_BATCH),
            ("sqlite NORMAL, group commit", lambda: _sqlite(tmp_dir / "n.db", "NORMAL"), MAX_BATCH),
        ]
        server = None
        if args.pg:
            from tests.pg import acquire_server

            server = acquire_server()
            pg_url = server.create_database()
            pg_name = "postgresql (fsync off),"
            cases.append((f"{pg_name} commit per event", lambda: Database(pg_url), 1))
            cases.append((f"{pg_name} group commit", lambda: Database(pg_url), MAX_BATCH))
        try:
            print(f"{args.calls} concurrent calls x {args.events} events each")
            for name, make, max_batch in cases:
                db = make()
                try:
                    r = _run(db, args.calls, args.events, max_batch)
                finally:
                    db.dispose()
                print(
                    f"  {name:44s} append p50 {r['p50_ms']:6.2f} ms  p95 {r['p95_ms']:7.2f} ms"
                    f"  {r['events_per_s']:7.0f} events/s"
                )
        finally:
            if server is not None:
                from tests.pg import release_server

                release_server()


if __name__ == "__main__":
    main()
