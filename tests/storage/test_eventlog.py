"""Group commit: appends that arrive while a batch is written share the next commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from app.storage import CallNotFoundError, CallRepository, Database, DatabaseUnavailableError
from app.storage.eventlog import GroupCommitLog

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


class GatedBegin:
    """Database.begin_write, but the first transaction waits for the test to open the gate;
    ``fail_next`` makes one transaction fail as a lost database would (failure injection)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail_next = False
        self._first = True

    @contextmanager
    def __call__(self) -> Iterator[Connection]:
        if self._first:
            self._first = False
            self.entered.set()
            assert self.gate.wait(timeout=60)
        if self.fail_next:
            self.fail_next = False
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))
        with self.db.begin_write() as conn:
            yield conn


def _wait_until(predicate: object, what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _append_in_thread(
    log: GroupCommitLog, call_id: str, n: int, results: dict[int, object]
) -> threading.Thread:
    def run() -> None:
        try:
            results[n] = log.append(call_id, "dtmf", {"n": n}, T0)
        except Exception as exc:  # the test asserts what each appender got
            results[n] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_appends_queued_during_a_commit_share_the_next_one(db: Database) -> None:
    repo = CallRepository(db)
    repo.start_call("a", "400", "+86", "sip", "zh", T0)
    repo.start_call("b", "400", "+86", "sip", "zh", T0)
    begin = GatedBegin(db)
    log = GroupCommitLog(begin, db.where)
    results: dict[int, object] = {}

    leader = _append_in_thread(log, "a", 0, results)
    assert begin.entered.wait(timeout=60)
    followers = []
    for n, call_id in enumerate(["a", "b", "ghost", "a", "b", "a"], start=1):
        followers.append(_append_in_thread(log, call_id, n, results))
        _wait_until(lambda n=n: log.queued == n, f"{n} queued appends")  # keep arrival order
    begin.gate.set()
    for t in [leader, *followers]:
        t.join()

    assert log.batches == 2  # the leader's own commit, then all six followers in one
    assert {n: results[n] for n in (0, 1, 2, 4, 5, 6)} == {0: 1, 1: 2, 2: 1, 4: 3, 5: 2, 6: 4}
    assert isinstance(results[3], CallNotFoundError)
    assert [e.payload["n"] for e in repo.events("a")] == [0, 1, 4, 6]
    assert [(e.seq, e.payload["n"]) for e in repo.events("b")] == [(1, 2), (2, 5)]


def test_a_failed_commit_fails_every_append_in_it_and_the_log_recovers(db: Database) -> None:
    repo = CallRepository(db)
    repo.start_call("a", "400", "+86", "sip", "zh", T0)
    begin = GatedBegin(db)
    log = GroupCommitLog(begin, db.where)
    results: dict[int, object] = {}

    leader = _append_in_thread(log, "a", 0, results)
    assert begin.entered.wait(timeout=60)
    followers = [_append_in_thread(log, "a", n, results) for n in (1, 2, 3)]
    _wait_until(lambda: log.queued == 3, "3 queued appends")
    begin.fail_next = True  # the leader's own transaction fails
    begin.gate.set()
    for t in [leader, *followers]:
        t.join()

    # the leader's batch failed; the followers' batch (written after) succeeded
    error = results[0]
    assert isinstance(error, DatabaseUnavailableError)
    assert "event 'dtmf' of call 'a' not written" in str(error)
    assert db.where in str(error) and "disk I/O error" in str(error)
    assert [results[n] for n in (1, 2, 3)] == [1, 2, 3]
    assert [(e.seq, e.payload["n"]) for e in repo.events("a")] == [(1, 1), (2, 2), (3, 3)]
    assert log.append("a", "hangup", {}, T0) == 4

