"""A call's append-only event log: the single record of the call.

``emit(event)`` never waits for the database: the typed event is serialized once and masked
once (``app.pii.Redactor``: card, ID and bank numbers, and the values of sensitive flow
nodes, never leave the process in clear), published to the live bus at once, and queued for
one background writer per call, which creates the call's row, then commits queued events in
order (in groups: whatever accumulated while the previous commit ran) and finally computes
the CDR (``close``). An event is *acknowledged* once its commit returns; a crash (kill -9)
loses no acknowledged event.

When the database fails the call goes on: the writer retries with back-off, keeping the
events in memory. If the database is still failing ``retry_for_s`` after the call ended (or
the process is stopping), the unwritten record is spooled to ``spool_dir/<call_id>.json``,
which the next start replays (``replay_spool``); if even that fails, the record is written
to the log as one error line with the call id, so it can be recovered by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from app.call.ports import CallStore, EventPublisher
from app.events import utc_now
from app.log import get_logger
from app.metrics import EVENT_WRITE_FAILURES
from app.pii import Redactor
from app.record import CallEvent, event_payload

MAX_GROUP = 200  # events written per commit, at most
_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class CallHeader:
    """The fields of the call's row, known when it starts."""

    call_id: str
    hotline_number: str
    caller_number: str
    channel: str
    locale: str
    started_at: datetime
    flow_id: str
    node_id: str | None = None  # the node running the call (a lost node's calls are found)


@dataclass(frozen=True)
class CallClosing:
    """What the end of the call adds to the record besides its events."""

    outcome: str
    ended_at: datetime
    flow_state: dict[str, Any] | None = None
    recording: tuple[str, float, bool] | None = None  # (file, duration_s, caller_notified)


@dataclass
class _Pending:
    items: list[tuple[dict[str, Any], datetime]] = field(default_factory=list)


class CallEventLog:
    def __init__(self, header: CallHeader, store: CallStore, bus: EventPublisher, *,
                 spool_dir: Path | None = None, retry_for_s: float = 30.0,
                 redactor: Redactor | None = None) -> None:
        self.header = header
        self.redactor = redactor or Redactor(owner=header.call_id)
        self.call_id = header.call_id
        self.history: list[dict[str, Any]] = []  # every event emitted, as published
        self.typed: list[tuple[int, CallEvent]] = []  # the same, as (seq, event)
        self.write_failures = 0
        self.acknowledged = 0  # highest seq known to be durable
        self._store = store
        self._bus = bus
        self._spool_dir = spool_dir
        self._retry_for_s = retry_for_s
        self._log = get_logger(call_id=header.call_id)
        self._queue: list[tuple[dict[str, Any], datetime]] = []
        self._wake = asyncio.Event()
        self._row_created = False
        self._start_tried = asyncio.Event()
        self.start_problem: str | None = None
        self._closing: CallClosing | None = None
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        self._seq = 0

    # -- call side ----------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.create_task(self._run(), name=f"eventlog-{self.call_id}")

    async def wait_started(self, timeout_s: float) -> str | None:
        """None once the call's row exists; else why not (the writer keeps trying)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._start_tried.wait()
        if self._row_created:
            return None
        return self.start_problem or f"the call record was not created within {timeout_s} s"

    @property
    def accepting(self) -> bool:
        """Whether an event emitted now is still stored with the record (not closing)."""
        return self._closing is None and not self._closed

    def emit(self, event: CallEvent) -> dict[str, Any]:
        """Record ``event``: published now, stored in order in the background."""
        at = utc_now()
        self._seq += 1
        payload: dict[str, Any] = self.redactor.json(event_payload(event))
        envelope = {**payload, "call_id": self.call_id, "seq": self._seq, "at": at.isoformat()}
        self.history.append(envelope)
        self.typed.append((self._seq, event))
        self._bus.publish(envelope)
        if self._closing is not None or self._closed:
            self._log.error("event_after_close", event_type=event.type)
            return envelope
        self._queue.append((payload, at))
        self._wake.set()
        return envelope

    async def close(self, closing: CallClosing) -> None:
        """Write everything emitted so far and the CDR; returns when stored or spooled."""
        if self._writer is None or self._closing is not None:
            return
        if closing.flow_state is not None:
            closing = replace(closing, flow_state=self.redactor.json(closing.flow_state))
        self._closing = closing
        self._wake.set()
        try:
            await asyncio.shield(self._writer)
        except asyncio.CancelledError:
            # the process is stopping: do not wait for a database that is not answering
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            raise
        finally:
            self._closed = True
            self.redactor.close()

    # -- writer -------------------------------------------------------------------------------
    async def _run(self) -> None:
        deadline: float | None = None
        attempt = 0
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self._closing is not None and deadline is None:
                    deadline = loop.time() + self._retry_for_s
                done, problem = await self._step()
                if done:
                    return
                if problem is None:
                    attempt = 0
                    if not self._queue and self._closing is None:
                        self._wake.clear()
                        await self._wake.wait()
                    continue
                attempt += 1
                if deadline is not None and loop.time() >= deadline:
                    await self._spool(problem)
                    return
                with contextlib.suppress(TimeoutError):  # back off; wake early on close
                    async with asyncio.timeout(_BACKOFF_S[min(attempt, len(_BACKOFF_S)) - 1]):
                        await self._wake.wait()
                self._wake.clear()
        except asyncio.CancelledError:
            await self._spool("the process stopped before the record was written")
            raise

    async def _step(self) -> tuple[bool, str | None]:
        """One unit of work: create the row, write a group, or finish. (done, problem)."""
        try:
            if not self._row_created:
                await self._create_row()
            elif self._queue:
                group = self._queue[:MAX_GROUP]
                seqs = await asyncio.to_thread(self._store.append_events, self.call_id, group)
                del self._queue[: len(group)]
                self.acknowledged = max(seqs, default=self.acknowledged)
            elif self._closing is not None:
                await self._finish(self._closing)
                return True, None
            return False, None
        except Exception as exc:  # the call goes on; the record is retried, then spooled
            problem = f"{type(exc).__name__}: {exc}"[:500]
            self.write_failures += 1
            EVENT_WRITE_FAILURES.inc()
            if self.write_failures == 1 or self.write_failures % 20 == 0:
                self._log.error("call_record_write_failed", error=problem,
                                failures=self.write_failures, queued=len(self._queue))
            if not self._row_created:
                self.start_problem = self.start_problem or problem
                self._start_tried.set()
            return False, problem

    async def _create_row(self) -> None:
        h = self.header
        try:
            await asyncio.to_thread(
                self._store.start_call, h.call_id, h.hotline_number, h.caller_number,
                h.channel, h.locale, h.started_at, h.flow_id, node_id=h.node_id,
            )
        except ValueError as exc:
            if "already exists" not in str(exc):
                raise
        self._row_created = True
        self._start_tried.set()

    async def _finish(self, closing: CallClosing) -> None:
        if closing.recording is not None:
            file, duration_s, notified = closing.recording
            await asyncio.to_thread(
                self._store.add_recording, self.call_id, file, duration_s, notified
            )
        await asyncio.to_thread(
            lambda: self._store.end_call(self.call_id, closing.outcome, closing.ended_at,
                                         flow_state=closing.flow_state)
        )

    async def _spool(self, problem: str) -> None:
        record = {
            "header": {**asdict(self.header), "started_at": self.header.started_at.isoformat()},
            "row_created": self._row_created,
            "events": [{"event": e, "at": at.isoformat()} for e, at in self._queue],
            "closing": None if self._closing is None else {
                **asdict(self._closing), "ended_at": self._closing.ended_at.isoformat(),
            },
            "problem": problem,
        }
        text = json.dumps(record, ensure_ascii=False)
        if self._spool_dir is not None:
            try:
                await asyncio.to_thread(_write_atomic, self._spool_dir, self.call_id, text)
                self._log.error("call_record_spooled", reason=problem,
                                events=len(self._queue), dir=str(self._spool_dir))
                return
            except OSError as exc:
                problem = f"{problem}; spool failed: {exc}"
        self._log.error("call_record_lost", reason=problem, record=text)


def _write_atomic(folder: Path, call_id: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{call_id}.json.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(folder / f"{call_id}.json")


def replay_spool(store: CallStore, folder: Path) -> tuple[list[str], dict[str, str]]:
    """Store the records a previous run spooled (blocking). Returns (replayed, failed)."""
    replayed: list[str] = []
    failed: dict[str, str] = {}
    if not folder.is_dir():
        return replayed, failed
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            _replay_one(store, record)
        except Exception as exc:  # reported; the file stays for the next start
            failed[path.name] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        path.unlink()
        replayed.append(path.stem)
    return replayed, failed


def _replay_one(store: CallStore, record: dict[str, Any]) -> None:
    h = dict(record["header"])
    started = datetime.fromisoformat(h.pop("started_at"))
    try:
        store.start_call(h["call_id"], h["hotline_number"], h["caller_number"], h["channel"],
                         h["locale"], started, h["flow_id"], node_id=h.get("node_id"))
    except ValueError as exc:
        if "already exists" not in str(exc):
            raise
    events = [(e["event"], datetime.fromisoformat(e["at"])) for e in record["events"]]
    if events:
        store.append_events(h["call_id"], events)
    closing = record.get("closing")
    if closing:
        if closing.get("recording"):
            file, duration_s, notified = closing["recording"]
            store.add_recording(h["call_id"], file, duration_s, notified)
        store.end_call(h["call_id"], closing["outcome"],
                       datetime.fromisoformat(closing["ended_at"]),
                       flow_state=closing.get("flow_state"))
