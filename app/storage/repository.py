"""CallRepository: the call's append-only event log, its CDR, transcript and recordings.

Methods are synchronous (the call session runs them with ``asyncio.to_thread``); each is one
transaction, committed (durable) when it returns; concurrent ``append_event`` calls share a
commit (``eventlog.GroupCommitLog``). ``seq`` numbers come from a per-call
counter incremented under the row lock, so concurrent appends get 1, 2, 3... with no gap.
The CDR is computed from the log at ``end_call`` (or ``finalize_interrupted`` after a crash);
the transcript and the flow path are views of the log (``app.record``), never stored twice.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.record import CallEvent, flow_path, parse_event, transcript_turns
from app.storage import rollup
from app.storage.db import Database
from app.storage.errors import CallNotFoundError, DatabaseUnavailableError
from app.storage.eventlog import MAX_BATCH, GroupCommitLog
from app.storage.handoff_cdr import EVENT_TYPES as HANDOFF_EVENTS
from app.storage.handoff_cdr import apply_handoff
from app.storage.models import CallEventRow, CallRow, NodeHeartbeatRow, RecordingRow
from app.storage.schemas import (
    CallDetail,
    CallPage,
    Cdr,
    EventOut,
    RecordingOut,
    SentimentPoint,
    TurnOut,
)

INTERRUPTED = "interrupted"
MAX_PAGE = 500
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CDR_EVENT_TYPES = ("call_started", "intent", "transfer", "locale_changed", "call_ended",
                    *HANDOFF_EVENTS)


def _aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _text(name: str, value: object, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise ValueError(f"{name} is longer than {max_len} characters: {value[:40]!r}...")
    return value


def _caller_number(value: object) -> str:
    """The caller's number as signalled; "" when withheld or unknown (a browser caller)."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError(f"caller_number must be a string of at most 64 characters, got {value!r}")
    return value


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _json_object(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not JSON-serializable: {exc}") from exc
    return value


def _check_event_payload(event_type: str, payload: dict[str, Any]) -> None:
    """The fields the CDR and the call detail read must have the right shape."""
    if event_type == "node_entered":
        _text("node_entered event 'node'", payload.get("node"), 128)
    elif event_type == "sentiment":
        _number("sentiment event 'score'", payload.get("score"))
        _text("sentiment event 'label'", payload.get("label"), 32)
    elif event_type == "transfer":
        _text("transfer event 'queue'", payload.get("queue"), 64)
    elif event_type == "intent" and payload.get("intent") is not None:
        _text("intent event 'intent'", payload.get("intent"), 64)


def _apply_cdr(
    row: CallRow, events: Sequence[CallEventRow], outcome: str, ended_at: datetime
) -> None:
    """Fill the CDR fields of ``row`` from its event log (ordered by seq)."""
    started_at = row.started_at
    if ended_at < started_at:
        raise ValueError(
            f"call {row.id!r} cannot end at {ended_at.isoformat()}, "
            f"before it started at {started_at.isoformat()}"
        )
    for ev in events:
        if ev.type == "call_started" and row.answered_at is None:
            row.answered_at = ev.at
        elif ev.type == "intent" and ev.payload.get("intent"):
            row.final_intent = str(ev.payload["intent"])
        elif ev.type == "transfer" and ev.payload.get("queue"):
            row.handoff_target = str(ev.payload["queue"])
        elif ev.type == "locale_changed" and ev.payload.get("locale"):
            row.locale = str(ev.payload["locale"])[:16]
        elif ev.type == "call_ended":
            reason = ev.payload.get("end_reason")
            row.end_reason = str(reason)[:32] if reason else row.end_reason
            media = ev.payload.get("media")
            row.media = media if isinstance(media, dict) and media else row.media
            locale = ev.payload.get("locale")
            row.locale = str(locale)[:16] if locale else row.locale
    apply_handoff(row, events, outcome, ended_at)
    row.outcome = outcome
    row.ended_at = ended_at
    row.duration_s = (ended_at - started_at).total_seconds()


def _typed(events: Sequence[EventOut]) -> list[tuple[int, CallEvent]]:
    """The log as typed events; an entry of an older, unknown shape is left out of views."""
    typed: list[tuple[int, CallEvent]] = []
    for e in events:
        try:
            typed.append((e.seq, parse_event({**e.payload, "type": e.type})))
        except ValidationError:
            continue
    return typed


class CallRepository:
    """Calls, their event logs and records in one ``Database``. Thread-safe."""

    def __init__(self, db: Database, *, max_event_batch: int = MAX_BATCH) -> None:
        """``max_event_batch``: most events committed together (1 = a commit per event)."""
        self.db = db
        self._log = GroupCommitLog(db.begin_write, db.where, max_batch=max_event_batch)

    # -- writes ----------------------------------------------------------------------------

    def start_call(
        self,
        call_id: str,
        hotline_number: str,
        caller_number: str,
        channel: str,
        locale: str,
        started_at: datetime,
        flow_id: str | None = None,
        *,
        caller_region: str | None = None,
        node_id: str | None = None,
    ) -> None:
        """Create the call's row (``caller_number`` "" when withheld); raises ValueError if
        ``call_id`` already exists."""
        row = CallRow(
            id=_text("call_id", call_id, 64),
            hotline_number=_text("hotline_number", hotline_number, 32),
            caller_number=_caller_number(caller_number),
            channel=_text("channel", channel, 16),
            locale=_text("locale", locale, 16),
            started_at=_aware("started_at", started_at),
            flow_id=None if flow_id is None else _text("flow_id", flow_id, 64),
            caller_region=(
                None if caller_region is None else _text("caller_region", caller_region, 64)
            ),
            node_id=None if node_id is None else _text("node_id", node_id, 64),
            last_seq=0,
        )
        try:
            with self.db.session(write=True) as s:
                if s.get(CallRow, call_id) is not None:
                    raise ValueError(f"call {call_id!r} already exists")
                s.add(row)
        except IntegrityError as exc:  # a concurrent start_call with the same id won the race
            raise ValueError(f"call {call_id!r} already exists") from exc

    def append_event(self, call_id: str, event: dict[str, Any], at: datetime) -> int:
        """Append one event (a dict with a ``type``); returns its seq once it is durable.

        Concurrent appends (from several calls' threads) share one commit (group commit).
        Raises CallNotFoundError, ValueError (bad event), DatabaseUnavailableError."""
        event_type, payload = self._checked(event)
        return self._log.append(call_id, event_type, payload, _aware("at", at))

    @staticmethod
    def _checked(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if not isinstance(event, dict):
            raise ValueError(f"event must be a dict, got {type(event).__name__}")
        event_type = event.get("type")
        if not isinstance(event_type, str) or not _NAME.match(event_type):
            raise ValueError(f'event needs a "type" (lower_snake_case name), got {event_type!r}')
        fields = {k: v for k, v in event.items() if k != "type"}
        payload = _json_object(f"{event_type} event", fields)
        _check_event_payload(event_type, payload)
        return event_type, payload

    def append_events(
        self, call_id: str, events: Sequence[tuple[dict[str, Any], datetime]]
    ) -> list[int]:
        """Append several events of one call in order, in one transaction (all or none);
        their seqs once durable. Errors as ``append_event``."""
        checked: list[tuple[str, dict[str, Any], datetime]] = []
        for event, at in events:
            kind, payload = self._checked(event)
            checked.append((kind, payload, _aware("at", at)))
        return self._log.append_many(call_id, checked)

    def save_flow_state(self, call_id: str, state: dict[str, Any]) -> None:
        """Replace the call's saved flow state (JSON-serializable dict)."""
        value = _json_object("flow state", state)
        with self.db.session(write=True) as s:
            result = s.execute(
                update(CallRow)
                .where(CallRow.id == call_id)
                .values(flow_state=value)
                .returning(CallRow.id)
                .execution_options(synchronize_session=False)
            ).scalar_one_or_none()
            if result is None:
                raise CallNotFoundError(call_id)

    def add_recording(
        self, call_id: str, path: str, duration_s: float, caller_notified: bool
    ) -> None:
        """Register a recording file of the call (``caller_notified``: the flow announced it)."""
        duration = _number("duration_s", duration_s)
        if duration < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration}")
        if not isinstance(caller_notified, bool):
            raise ValueError(f"caller_notified must be a bool, got {caller_notified!r}")
        row = RecordingRow(
            call_id=call_id, path=_text("path", str(path), 1024), duration_s=duration,
            caller_notified=caller_notified, created_at=datetime.now(UTC),
        )
        with self.db.session(write=True) as s:
            self._require_call(s, call_id)
            s.add(row)

    def end_call(self, call_id: str, outcome: str, ended_at: datetime, *,
                 flow_state: dict[str, Any] | None = None) -> Cdr:
        """Compute and store the CDR from the event log (end reason, media facts and last
        locale come from its ``call_ended`` event), with the final ``flow_state``.
        Idempotent: a call already ended keeps its CDR (the first outcome wins)."""
        _text("outcome", outcome, 32)
        state = None if flow_state is None else _json_object("flow state", flow_state)
        if not _NAME.match(outcome):
            raise ValueError(f"outcome must be a lower_snake_case name, got {outcome!r}")
        ended = _aware("ended_at", ended_at)
        with self.db.session(write=True) as s:
            row = s.get(CallRow, call_id, with_for_update=True)
            if row is None:
                raise CallNotFoundError(call_id)
            if row.ended_at is None:
                if state is not None:
                    row.flow_state = state
                self._close(s, row, outcome, ended, {})
            return Cdr.model_validate(row)

    def heartbeat(self, node_id: str, at: datetime) -> str | None:
        """Write this node's heartbeat: None when the database takes writes, else why not
        (the ``/readyz`` write probe: a read-only database is not ready)."""
        when = _aware("at", at)
        try:
            with self.db.session(write=True) as s:
                row = s.get(NodeHeartbeatRow, node_id)
                if row is None:
                    s.add(NodeHeartbeatRow(node_id=_text("node_id", node_id, 64), at=when))
                else:
                    row.at = when
        except (SQLAlchemyError, DatabaseUnavailableError) as exc:
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
            return f"database does not take writes ({self.db.where}): {reason}"
        return None

    def finalize_interrupted(
        self, now: datetime, *, node_id: str | None = None, unowned_too: bool = False,
        recording_duration: Callable[[str], float | None] | None = None,
    ) -> list[str]:
        """End every call that has no end (a crash or kill -9 left it in flight): outcome
        ``interrupted``, ended at its last event. ``node_id`` limits this to one node's calls
        (several nodes sharing one PostgreSQL); ``unowned_too`` adds the calls that name no
        node (written before calls carried one). A recording the call was writing (its
        ``recording_started`` event) is registered with the duration
        ``recording_duration(file)`` finds on disk. Returns the finalized call ids."""
        extra = {"finalized_at": _aware("now", now).isoformat()}
        with self.db.session(write=True) as s:
            query = select(CallRow).where(CallRow.ended_at.is_(None))
            if node_id is not None:
                mine = CallRow.node_id == node_id
                query = query.where(or_(mine, CallRow.node_id.is_(None)) if unowned_too else mine)
            return self._finalize(s, query, extra, recording_duration)

    def finalize_lost_nodes(
        self, now: datetime, *, survivor: str, stale_after_s: float,
        recording_duration: Callable[[str], float | None] | None = None,
    ) -> dict[str, list[str]]:
        """Finalize the calls of every other node whose heartbeat is older than
        ``stale_after_s`` (killed, or its machine lost), as ``finalize_interrupted`` does, and
        forget that node's heartbeat. One transaction; several survivors running this at once
        finalize each lost node once (PostgreSQL: its heartbeat row is taken ``FOR UPDATE SKIP
        LOCKED``; SQLite: writers are serialized). A lost node's queued callbacks go to
        ``survivor`` in the same transaction (``_take_callbacks``). Returns {lost node: its
        finalized calls}."""
        when = _aware("now", now)
        if not math.isfinite(stale_after_s) or stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s!r}")
        cutoff = when - timedelta(seconds=stale_after_s)
        done: dict[str, list[str]] = {}
        with self.db.session(write=True) as s:
            lost = s.scalars(
                select(NodeHeartbeatRow)
                .where(NodeHeartbeatRow.at < cutoff, NodeHeartbeatRow.node_id != survivor)
                .with_for_update(skip_locked=True)
            ).all()
            for node in lost:
                extra = {"finalized_at": when.isoformat(), "lost_node": node.node_id,
                         "finalized_by": survivor}
                query = select(CallRow).where(CallRow.ended_at.is_(None),
                                              CallRow.node_id == node.node_id)
                done[node.node_id] = self._finalize(s, query, extra, recording_duration)
                self._take_callbacks(s, node.node_id, survivor, when)
                s.delete(node)
        return done

    @staticmethod
    def _take_callbacks(s: Session, lost: str, survivor: str, when: datetime) -> None:
        """The lost node's queued callbacks become ``survivor``'s (``node_id``), each with a
        ``callback_adopted`` line in its record: the survivor serves them (``app.handoff.
        adopt``), and only it, as the lost node's row goes in the same transaction."""
        rows = s.scalars(select(CallRow).where(
            CallRow.node_id == lost, CallRow.callback_status == "queued",
            CallRow.ended_at.is_not(None)).with_for_update()).all()
        for row in rows:
            row.node_id = survivor
            row.last_seq += 1
            s.add(CallEventRow(call_id=row.id, seq=row.last_seq, at=when,
                               type="callback_adopted",
                               payload={"from_node": lost, "by_node": survivor}))

    def live_node(self, call_id: str) -> str | None:
        """The node holding ``call_id`` while it is up (None: ended, unknown, or no node)."""
        with self.db.session() as s:
            node: str | None = s.scalar(select(CallRow.node_id).where(
                CallRow.id == call_id, CallRow.ended_at.is_(None)))
            return node

    def nodes(self) -> dict[str, datetime]:
        """Every node's last heartbeat (lost nodes are forgotten once their calls are
        finalized)."""
        with self.db.session() as s:
            return {r.node_id: r.at for r in s.scalars(select(NodeHeartbeatRow)).all()}

    def _finalize(
        self, s: Session, query: Select[CallRow], extra: dict[str, Any],
        recording_duration: Callable[[str], float | None] | None,
    ) -> list[str]:
        rows = s.scalars(query.order_by(CallRow.started_at).with_for_update()).all()
        for row in rows:
            last_at = s.scalar(
                select(func.max(CallEventRow.at)).where(CallEventRow.call_id == row.id)
            )
            ended = max(last_at, row.started_at) if last_at is not None else row.started_at
            self._close(s, row, INTERRUPTED, ended, extra)
            if recording_duration is not None:
                self._recover_recording(s, row.id, recording_duration)
        return [row.id for row in rows]

    @staticmethod
    def _recover_recording(
        s: Session, call_id: str, duration_of: Callable[[str], float | None]
    ) -> None:
        started = s.scalars(
            select(CallEventRow.payload)
            .where(CallEventRow.call_id == call_id, CallEventRow.type == "recording_started")
        ).first()
        if not started or s.scalar(select(RecordingRow.id).where(RecordingRow.call_id == call_id)):
            return
        file = str(started.get("file", ""))
        duration = duration_of(file) if file else None
        if duration is not None:
            s.add(RecordingRow(call_id=call_id, path=file, duration_s=duration,
                               caller_notified=True, created_at=datetime.now(UTC)))

    # -- reads -----------------------------------------------------------------------------

    def list_calls(
        self,
        started_from: datetime | None = None,
        started_to: datetime | None = None,
        hotline_number: str | None = None,
        outcome: str | None = None,
        intent: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> CallPage:
        """Calls newest first; ``started_from`` inclusive, ``started_to`` exclusive."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be an int in 1..{MAX_PAGE}, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be an int >= 0, got {offset!r}")
        conditions: list[ColumnElement[bool]] = []
        if started_from is not None:
            conditions.append(CallRow.started_at >= _aware("started_from", started_from))
        if started_to is not None:
            conditions.append(CallRow.started_at < _aware("started_to", started_to))
        if hotline_number is not None:
            conditions.append(CallRow.hotline_number == hotline_number)
        if outcome is not None:
            conditions.append(CallRow.outcome == outcome)
        if intent is not None:
            conditions.append(CallRow.final_intent == intent)
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(CallRow).where(*conditions)) or 0
            rows = s.scalars(
                select(CallRow)
                .where(*conditions)
                .order_by(CallRow.started_at.desc(), CallRow.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            items = [Cdr.model_validate(r) for r in rows]
        return CallPage(items=items, total=total, limit=limit, offset=offset)

    def get_call(self, call_id: str) -> CallDetail | None:
        """Everything about one call (None if unknown)."""
        with self.db.session() as s:
            row = s.get(CallRow, call_id)
            if row is None:
                return None
            events = self._events(s, call_id, 0)
            typed = _typed(events)
            recordings = self._recordings(s, call_id)
            cdr = Cdr.model_validate(row)
            return CallDetail(
                cdr=cdr,
                turns=[TurnOut.model_validate(t, from_attributes=True)
                       for t in transcript_turns(typed)],
                events=events,
                flow_path=flow_path(typed),
                sentiment=[
                    SentimentPoint(
                        at=e.at,
                        t_s=(e.at - cdr.started_at).total_seconds(),
                        score=float(e.payload["score"]),
                        label=str(e.payload["label"]),
                    )
                    for e in events
                    if e.type == "sentiment"
                ],
                recordings=recordings,
            )

    def events(self, call_id: str, after_seq: int = 0) -> list[EventOut]:
        """The call's events with ``seq > after_seq``, in order (a live view catches up)."""
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise ValueError(f"after_seq must be an int >= 0, got {after_seq!r}")
        with self.db.session() as s:
            self._require_call(s, call_id)
            return self._events(s, call_id, after_seq)

    def recordings(self, call_id: str) -> list[RecordingOut]:
        """The call's recordings, oldest first (for the download endpoint)."""
        with self.db.session() as s:
            self._require_call(s, call_id)
            return self._recordings(s, call_id)

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _require_call(s: Session, call_id: str) -> None:
        if s.scalar(select(CallRow.id).where(CallRow.id == call_id)) is None:
            raise CallNotFoundError(call_id)

    @staticmethod
    def _recordings(s: Session, call_id: str) -> list[RecordingOut]:
        rows = s.scalars(
            select(RecordingRow).where(RecordingRow.call_id == call_id).order_by(RecordingRow.id)
        ).all()
        return [RecordingOut.model_validate(r) for r in rows]

    @staticmethod
    def _events(s: Session, call_id: str, after_seq: int) -> list[EventOut]:
        rows = s.scalars(
            select(CallEventRow)
            .where(CallEventRow.call_id == call_id, CallEventRow.seq > after_seq)
            .order_by(CallEventRow.seq)
        ).all()
        return [EventOut.model_validate(r) for r in rows]

    @staticmethod
    def _close(
        s: Session, row: CallRow, outcome: str, ended_at: datetime, extra: dict[str, Any]
    ) -> None:
        """Fill the CDR from the log, log ``call_ended`` unless the session already did, and add
        the call to the report roll-ups (``rollup.add_call``).
        ``row`` is locked by the caller (FOR UPDATE / SQLite write lock)."""
        events = s.scalars(
            select(CallEventRow)
            .where(CallEventRow.call_id == row.id, CallEventRow.type.in_(_CDR_EVENT_TYPES))
            .order_by(CallEventRow.seq)
        ).all()
        _apply_cdr(row, events, outcome, ended_at)
        if not any(e.type == "call_ended" for e in events):
            row.last_seq += 1
            payload = {"outcome": outcome, "duration_s": row.duration_s, **extra}
            s.add(
                CallEventRow(
                    call_id=row.id, seq=row.last_seq, at=ended_at, type="call_ended",
                    payload=payload,
                )
            )
        s.flush()
        rollup.add_call(s, s.get_bind().dialect.name, row.id)
