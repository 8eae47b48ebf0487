"""Group commit for the event log: concurrent appends share one transaction (one fsync).

Each ``append`` blocks until its event is committed. Threads arriving while a batch is being
written queue up; when the batch commits, the first waiting thread becomes the next leader
and writes everything queued so far in one transaction (leader/follower group commit, no
background thread). Sequence numbers are handed out per call in arrival order: a thread's
own appends keep their order, and every call's seq runs 1, 2, 3... without gaps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import SQLAlchemyError

from app.storage.errors import CallNotFoundError, DatabaseUnavailableError
from app.storage.models import CallEventRow, CallRow

MAX_BATCH = 500


@dataclass(eq=False)
class _Pending:
    call_id: str
    type: str
    payload: dict[str, Any]
    at: datetime
    seq: int = 0
    error: str | None = None  # "not_found" or a database failure reason
    cause: BaseException | None = None
    done: bool = False
    prev: _Pending | None = None  # the event before it in the same append_many


class GroupCommitLog:
    """Appends events through ``begin`` (``Database.begin_write``)."""

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[Connection]],
        where: str,
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._max_batch = max_batch
        self._begin = begin  # a Connection in a write transaction, committed on exit
        self._where = where
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False
        self.batches = 0  # how many transactions were committed (for tests and figures)

    @property
    def queued(self) -> int:
        """Appends waiting for the next batch."""
        with self._cond:
            return len(self._queue)

    def append(self, call_id: str, event_type: str, payload: dict[str, Any], at: datetime) -> int:
        return self.append_many(call_id, [(event_type, payload, at)])[0]

    def append_many(
        self, call_id: str, events: list[tuple[str, dict[str, Any], datetime]]
    ) -> list[int]:
        """Append several events of one call, in order, in one transaction (all or none);
        their seqs once durable."""
        items = [_Pending(call_id, kind, payload, at) for kind, payload, at in events]
        if not items:
            return []
        for prev, item in zip(items, items[1:], strict=False):
            item.prev = prev  # a group is written in one transaction (all or nothing)
        with self._cond:
            self._queue.extend(items)
        last = items[-1]
        while True:
            with self._cond:
                while self._writing and not last.done:
                    self._cond.wait()
                if last.done:
                    break
                self._writing = True  # lead: write what is queued (up to max_batch)
                batch = self._take_batch()
            try:
                self._write(batch)
            finally:
                with self._cond:
                    for pending in batch:
                        pending.done = True
                    self._writing = False
                    self._cond.notify_all()
        return [self._result(item) for item in items]

    def _take_batch(self) -> list[_Pending]:
        """Up to ``max_batch`` queued events, never cutting one ``append_many`` group."""
        cut = min(self._max_batch, len(self._queue))
        while cut < len(self._queue) and self._queue[cut].prev is not None:
            cut += 1
        batch, self._queue = self._queue[:cut], self._queue[cut:]
        return batch

    def _result(self, item: _Pending) -> int:
        if item.error == "not_found":
            raise CallNotFoundError(item.call_id)
        if item.error is not None:
            raise DatabaseUnavailableError(
                f"event {item.type!r} of call {item.call_id!r} not written ({self._where}): "
                f"{item.error}"
            ) from item.cause
        return item.seq

    def _write(self, batch: list[_Pending]) -> None:
        by_call: dict[str, list[_Pending]] = {}
        for pending in batch:
            by_call.setdefault(pending.call_id, []).append(pending)
        try:
            with self._begin() as conn:
                rows = self._allocate(conn, by_call)
                if rows:
                    conn.execute(insert(CallEventRow), rows)
        except SQLAlchemyError as exc:
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            for pending in batch:
                pending.error, pending.cause, pending.seq = reason, exc, 0
            return
        self.batches += 1

    @staticmethod
    def _allocate(conn: Connection, by_call: dict[str, list[_Pending]]) -> list[dict[str, Any]]:
        """Reserve seq numbers per call (row-locked increment); the rows to insert."""
        rows: list[dict[str, Any]] = []
        for call_id, items in by_call.items():
            last = conn.execute(
                update(CallRow)
                .where(CallRow.id == call_id)
                .values(last_seq=CallRow.last_seq + len(items))
                .returning(CallRow.last_seq)
            ).scalar_one_or_none()
            if last is None:
                for pending in items:
                    pending.error = "not_found"
                continue
            first = int(last) - len(items) + 1
            for offset, pending in enumerate(items):
                pending.seq = first + offset
                rows.append(
                    {"call_id": call_id, "seq": pending.seq, "at": pending.at,
                     "type": pending.type, "payload": pending.payload}
                )
        return rows
