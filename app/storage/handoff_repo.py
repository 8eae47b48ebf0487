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
