"""Reads and late writes of the human side of calls (blocking: run with ``to_thread``).

``previous_calls`` feeds the handoff packet (the caller's history with outcomes and
dispositions) and sticky routing (who served them last); ``agent_calls`` is the desk's
"today"; ``append_late`` adds an event to a call whose record is already closed (the
agent's wrap-up, a callback's result) and updates its CDR in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.storage.db import Database
from app.storage.errors import CallNotFoundError
from app.storage.handoff_cdr import apply_wrap_up
from app.storage.models import CallEventRow, CallRow
from app.storage.schemas import Cdr


class PreviousCall(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: str
    started_at: datetime
    outcome: str | None
    final_intent: str | None
    answered_by: str | None
    disposition: str | None
    wrap_notes: str | None
    channel: str


class StoredCallback(BaseModel):
    """A callback still queued in the record, with what serves it again: the call's row and
    the payloads of its ``callback_queued`` (last), ``handoff_requested`` (last), ``crm``
    (last) and ``sentiment`` events, and when it first joined a queue."""

    call_id: str
    channel: str
    hotline_number: str
    caller_number: str
    locale: str
    started_at: datetime
    queued: dict[str, Any]
    handoff: dict[str, Any] | None = None
    crm: dict[str, Any] | None = None
    sentiment_scores: list[float] = []
    first_joined_at: datetime | None = None


_CALLBACK_EVENTS = ("callback_queued", "handoff_requested", "crm", "sentiment", "queue_joined")


class HandoffRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def previous_calls(self, caller_number: str, before_call: str, limit: int = 5
                       ) -> list[PreviousCall]:
        """The caller's earlier calls, newest first (none for a withheld number)."""
        if not caller_number or caller_number == "anonymous":
            return []
        with self.db.session() as s:
            rows = s.scalars(
                select(CallRow).where(CallRow.caller_number == caller_number,
                                      CallRow.id != before_call)
                .order_by(CallRow.started_at.desc()).limit(limit)
            ).all()
            return [PreviousCall.model_validate(r) for r in rows]

    def agent_calls(self, agent_id: str, since: datetime, limit: int = 100) -> list[Cdr]:
        """Calls ``agent_id`` answered since ``since``, newest first."""
        with self.db.session() as s:
            rows = s.scalars(
                select(CallRow).where(CallRow.answered_by == agent_id,
                                      CallRow.started_at >= since.astimezone(UTC))
                .order_by(CallRow.started_at.desc()).limit(limit)
            ).all()
            return [Cdr.model_validate(r) for r in rows]

    def cdr(self, call_id: str) -> Cdr | None:
        with self.db.session() as s:
            row = s.get(CallRow, call_id)
            return None if row is None else Cdr.model_validate(row)

    def queued_callbacks(self, node_id: str) -> list[StoredCallback]:
        """The ended calls of ``node_id`` whose callback is still queued, oldest first."""
        with self.db.session() as s:
            rows = s.scalars(
                select(CallRow).where(CallRow.node_id == node_id,
                                      CallRow.callback_status == "queued",
                                      CallRow.ended_at.is_not(None))
                .order_by(CallRow.started_at)
            ).all()
            return [self._stored_callback(s, row) for row in rows]

    @staticmethod
    def _stored_callback(s: Session, row: CallRow) -> StoredCallback:
        found: dict[str, dict[str, Any]] = {}
        scores: list[float] = []
        joined: datetime | None = None
        events = s.scalars(select(CallEventRow).where(
            CallEventRow.call_id == row.id, CallEventRow.type.in_(_CALLBACK_EVENTS))
            .order_by(CallEventRow.seq)).all()
        for ev in events:
            if ev.type == "sentiment" and isinstance(ev.payload.get("score"), int | float):
                scores.append(float(ev.payload["score"]))
            elif ev.type == "queue_joined":
                joined = joined or ev.at
            else:
                found[ev.type] = dict(ev.payload)
        return StoredCallback(
            call_id=row.id, channel=row.channel, hotline_number=row.hotline_number,
            caller_number=row.caller_number, locale=row.locale, started_at=row.started_at,
            queued=found.get("callback_queued", {}), handoff=found.get("handoff_requested"),
            crm=found.get("crm"), sentiment_scores=scores[-20:], first_joined_at=joined)

    def append_late(self, call_id: str, event: dict[str, Any], at: datetime) -> int:
        """Append ``event`` (with its ``type``) to the log of a closed call; a wrap-up or a
        callback result also updates the CDR. Returns the event's seq."""
        kind = str(event["type"])
        payload = {k: v for k, v in event.items() if k != "type"}
        with self.db.session(write=True) as s:
            row = s.get(CallRow, call_id, with_for_update=True)
            if row is None:
                raise CallNotFoundError(call_id)
            row.last_seq += 1
            s.add(CallEventRow(call_id=call_id, seq=row.last_seq, at=at.astimezone(UTC),
                               type=kind, payload=payload))
            if kind == "wrap_up":
                apply_wrap_up(row, payload)
            elif kind == "callback_done":
                row.callback_status = "done" if payload.get("outcome") == "answered" \
                    else "failed"
                row.callback_done_at = at.astimezone(UTC)
            elif kind == "callback_queued":
                row.callback_requested = True
                row.callback_status = "queued"
            return row.last_seq
