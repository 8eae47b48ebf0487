"""Reports and call search over many generated CDRs: each report from the raw records and
from the hourly roll-ups (app/storage/rollup.py) in the same run, with the time the roll-up
rebuild took and whether both answers are the same; the call search's and the streamed CSV
export's times.

    .venv/bin/python -m bench.reports [--cdrs 100000] [--days 30] [--pg] [--no-sqlite]

The generated data (seeded) is loaded at the head schema straight into the tables (so the
roll-ups are empty), every report is timed over the raw records (best of ``--raw-repeat``),
``rebuild`` fills the roll-ups, and every report is timed again (best of ``--repeat``).
Each over a 7-day window and over the whole range. ``--pg`` runs the same on a private
PostgreSQL (tests/pg.py; fsync off: loading is faster than on a server).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from app.reports import Report, ReportFilter, run_report
from app.reports.queries import ROLLED
from app.reports.search import CallQuery, export_cdrs, search_calls
from app.storage import Database
from app.storage.models import CallEventRow, CallRow
from app.storage.rollup import rebuild

START = datetime(2026, 10, 1, tzinfo=UTC)
NUMBERS = ("4008001234", "4008005678", "4006660000", "4001112222")
INTENTS = ("order_status", "refund", "opening_hours", "store_address", None)
PHRASES = ("我要退货啊", "那个那个", "转人工", "不知道", "hello", "agent please")
BATCH = 5000


def _call(rng: random.Random, n: int, days: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    started = START + timedelta(seconds=rng.randrange(days * 86400))
    call_id = f"b{n:08d}"
    duration = rng.uniform(20, 400)
    handed = rng.random() < 0.35
    abandoned = handed and rng.random() < 0.3
    outcome = "abandoned" if abandoned else rng.choice(("completed", "completed",
                                                         "caller_hangup"))
    intent = rng.choice(INTENTS)
    cdr = {"id": call_id, "hotline_number": rng.choice(NUMBERS),
           "caller_number": f"138{rng.randrange(10**8):08d}", "channel": "sip",
           "locale": "zh" if rng.random() < 0.8 else "en", "started_at": started,
           "answered_at": started, "ended_at": started + timedelta(seconds=duration),
           "duration_s": duration, "outcome": outcome, "final_intent": intent,
           "handoff_target": "support" if handed else None, "flow_id": "main", "last_seq": 0}
    events: list[tuple[str, dict[str, Any]]] = [
        ("call_started", {"hotline_number": cdr["hotline_number"], "locale": cdr["locale"]}),
        ("node_entered", {"node": "menu"}),
    ]
    if rng.random() < 0.2:
        events.append(("flow_step", {"flow": "main", "node": "menu", "decision": "no_match",
                                     "input": "speech:" + rng.choice(PHRASES)}))
    events.append(("flow_step", {"flow": "main", "node": rng.choice(("menu", "orders")),
                                 "decision": "option", "input": "speech:查订单"}))
    events.append(("intent", {"intent": intent, "confidence": round(rng.random(), 3)}))
    events.append(("sentiment", {"score": rng.uniform(-1, 1),
                                 "label": rng.choice(("negative", "neutral", "positive"))}))
    if handed:
        events.append(("transfer", {"queue": "support",
                                    "reason": rng.choice(("caller_asked", "no_match"))}))
    rows = [{"call_id": call_id, "seq": i + 1, "type": kind, "payload": payload,
             "at": started + timedelta(seconds=duration * i / (len(events) + 1))}
            for i, (kind, payload) in enumerate(events)]
    cdr["last_seq"] = len(rows)
    return cdr, rows


def load(db: Database, cdrs: int, days: int, seed: int = 0) -> float:
    """Insert ``cdrs`` generated calls with their events; the seconds it took."""
    rng = random.Random(seed)
    t = time.perf_counter()
    for first in range(0, cdrs, BATCH):
        calls, events = [], []
        for n in range(first, min(cdrs, first + BATCH)):
            cdr, rows = _call(rng, n, days)
            calls.append(cdr)
            events.extend(rows)
        with db.begin_write() as conn:
            conn.execute(insert(CallRow), calls)
            conn.execute(insert(CallEventRow), events)
    return time.perf_counter() - t


def best_s(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def report_timings(db: Database, days: int, repeat: int, rollups: bool
                   ) -> tuple[dict[str, float], dict[str, Report]]:
    """Each report over a 7-day window and the whole range: best time, and the answer."""
    week = ReportFilter(start=START + timedelta(days=days // 2),
                        end=START + timedelta(days=days // 2 + 7), tz="Asia/Shanghai")
    whole = ReportFilter(start=START, end=START + timedelta(days=days + 1))
    out: dict[str, float] = {}
    answers: dict[str, Report] = {}
    for name in ROLLED:  # the reports the roll-ups keep
        for label, f in (("7 days", week), ("all", whole)):
            key = f"{name} ({label})"
            out[key] = best_s(lambda n=name, f=f: run_report(db, n, f, rollups=rollups),
                              repeat)
            answers[key] = run_report(db, name, f, rollups=rollups)
            want = "rollup" if rollups else "raw"
            if answers[key].source != want:
                raise SystemExit(f"{key}: answered from {answers[key].source}, not {want}: "
                                 f"{answers[key].notes}")
    return out, answers


def search_timings(db: Database, days: int, repeat: int) -> dict[str, float]:
    week = ReportFilter(start=START + timedelta(days=days // 2),
                        end=START + timedelta(days=days // 2 + 7), tz="Asia/Shanghai")
    whole = ReportFilter(start=START, end=START + timedelta(days=days + 1))
    out: dict[str, float] = {}
    by_number = CallQuery(filter=ReportFilter(start=week.start, end=week.end,
                                              number=NUMBERS[1]), outcome="abandoned")
    out["search: number+outcome, 7 days"] = best_s(
        lambda: search_calls(db, by_number, 50, 0), repeat)
    out["search: caller, all"] = best_s(
        lambda: search_calls(db, CallQuery(filter=whole, caller="13800000000"), 50, 0), repeat)
    out["search: page 1, all, no count"] = best_s(
        lambda: search_calls(db, CallQuery(filter=whole), 50, 0, count=False), repeat)
    out["export: 7 days CSV rows"] = best_s(
        lambda: sum(1 for _ in export_cdrs(db, CallQuery(filter=week))), 1)
    return out


def _same(a: Report, b: Report) -> bool:
    def strip(r: Report) -> dict[str, Any]:
        got = r.as_json()
        got.pop("notes")
        got.pop("source")
        return got
    return strip(a) == strip(b)


def run(db: Database, label: str, cdrs: int, days: int, repeat: int, raw_repeat: int) -> None:
    db.migrate()
    print(f"\n== {label}: loading {cdrs} CDRs over {days} days ...", flush=True)
    print(f"   loaded in {load(db, cdrs, days):.1f} s", flush=True)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    raw, raw_answers = report_timings(db, days, raw_repeat, rollups=False)
    t = time.perf_counter()
    calls = rebuild(db)
    print(f"   roll-ups rebuilt from {calls} calls in {time.perf_counter() - t:.1f} s",
          flush=True)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    rolled, rolled_answers = report_timings(db, days, repeat, rollups=True)
    print(f"{'report':36} {'raw records':>14} {'roll-ups':>12}  same answer")
    for key in raw:
        same = "yes" if _same(raw_answers[key], rolled_answers[key]) else "NO"
        print(f"{key:36} {raw[key] * 1e3:11.0f} ms {rolled[key] * 1e3:9.0f} ms  {same}")
    for key, value in search_timings(db, days, repeat).items():
        print(f"{key:36} {value * 1e3:11.0f} ms")


def _pg() -> Iterator[str]:
    from tests.pg import PgServer

    server = PgServer()
    server.start()
    try:
        yield server.create_database("bench_reports")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdrs", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--raw-repeat", type=int, default=1,
                        help="runs of each report over the raw records (slow at 1 M)")
    parser.add_argument("--pg", action="store_true", help="also on a private PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
            run(db, "SQLite", args.cdrs, args.days, args.repeat, args.raw_repeat)
            db.dispose()
    if args.pg:
        for url in _pg():
            db = Database(url)
            run(db, "PostgreSQL", args.cdrs, args.days, args.repeat, args.raw_repeat)
            db.dispose()


if __name__ == "__main__":
    main()
