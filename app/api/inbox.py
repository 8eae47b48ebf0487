"""The intent-improvement inbox: ``/console/inbox`` (the page), ``/v1/inbox`` (items),
``/v1/inbox/labels`` (label one), ``/v1/inbox/retrain`` (train in the background; the new
model is activated only if it does not regress on the held-out files, ``app.nlu.gate``).

Who: ``intents:manage`` (analyst, admin). Each label and each retraining is audited.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api.calls import masked_for
from app.api.console_ui import render
from app.auth import CurrentPrincipal, Perm, client_ip, require
from app.log import get_logger
from app.nlu.gate import train_gated
from app.nlu.intents import OUT_OF_SCOPE, IntentFileError
from app.nlu.progress import TrainingProgress
from app.nlu.text import base_locale
from app.reports.filters import ReportFilter
from app.reports.inbox import InboxItem, Label, LabelStore, inbox_items, now_iso
from app.storage.models import CallEventRow, CallRow

router = APIRouter(tags=["inbox"])
INBOX_DAYS = 30
DEFAULT_THRESHOLD = 0.6
log = get_logger()


class LabelIn(BaseModel):
    call_id: str = Field(min_length=1, max_length=64)
    seq: int = Field(ge=1, le=2**31 - 1)
    label: str = Field(min_length=1, max_length=64, description="an intent or out_of_scope")


class RetrainIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200, description="why (for the audit log)")


@dataclass
class RetrainJob:
    state: str = "idle"  # idle | running | activated | kept | failed
    summary: str = "not run since the server started"
    started_at: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    progress: TrainingProgress = field(default_factory=TrainingProgress)

    def as_json(self) -> dict[str, Any]:
        """``progress``: phase, phase_index of phases, step of total (epochs, examples,
        models evaluated), percent overall (100 when done)."""
        return {"state": self.state, "summary": self.summary, "started_at": self.started_at,
                "result": self.result, "progress": self.progress.snapshot()}


def _store(request: Request) -> LabelStore:
    settings = request.app.state.settings
    return LabelStore(settings.intents_dir, settings.data_dir / "inbox_labels.json")


def _job(request: Request) -> RetrainJob:
    state = request.app.state
    if not hasattr(state, "retrain"):
        state.retrain = RetrainJob()
    job: RetrainJob = state.retrain
    return job


async def _items(request: Request, threshold: float) -> list[InboxItem]:
    store = _store(request)
    f = ReportFilter.last_days(INBOX_DAYS)
    done = await asyncio.to_thread(store.done)
    return await asyncio.to_thread(inbox_items, request.app.state.db, f, threshold, done)


Threshold = Annotated[float, Query(ge=0, le=1, description="below it: low confidence")]


@router.get("/v1/inbox", dependencies=[require(Perm.INTENTS_MANAGE)])
async def list_inbox(request: Request, who: CurrentPrincipal,
                     threshold: Threshold = DEFAULT_THRESHOLD) -> list[dict[str, Any]]:
    """Unlabelled utterances of the last 30 days the classifier refused or was unsure of."""
    items = [asdict(i) for i in await _items(request, threshold)]
    shown: list[dict[str, Any]] = masked_for(who, request.app.state.settings, items)
    return shown


@router.get("/console/inbox", dependencies=[require(Perm.INTENTS_MANAGE)],
            response_class=HTMLResponse, include_in_schema=False)
async def inbox_page(request: Request, who: CurrentPrincipal,
                     threshold: Threshold = DEFAULT_THRESHOLD) -> Response:
    items = masked_for(who, request.app.state.settings,
                       [asdict(i) for i in await _items(request, threshold)])
    try:
        intents = await asyncio.to_thread(_store(request).intents)
    except IntentFileError as exc:
        raise HTTPException(503, f"intent data does not load: {exc}") from None
    return render(request, "inbox.html", who, items=items, intents=intents,
                  threshold=threshold, job=_job(request).as_json(),
                  can_listen=who.can(Perm.RECORDINGS_READ))


def _utterance(db: Any, call_id: str, seq: int) -> tuple[str, str]:
    """What the caller said before intent event ``seq`` of ``call_id``, and the call's
    language; ``LookupError`` saying what is missing."""
    with db.session() as s:
        locale = s.scalar(select(CallRow.locale).where(CallRow.id == call_id))
        if locale is None:
            raise LookupError(f"no call {call_id}")
        kind = s.scalar(select(CallEventRow.type).where(CallEventRow.call_id == call_id,
                                                         CallEventRow.seq == seq))
        if kind != "intent":
            raise LookupError(f"event {seq} of call {call_id} is not an intent event")
        payloads = s.scalars(
            select(CallEventRow.payload)
            .where(CallEventRow.call_id == call_id, CallEventRow.type == "transcript",
                   CallEventRow.seq < seq).order_by(CallEventRow.seq.desc())).all()
    for p in payloads:
        if p.get("is_final") and p.get("speaker", "caller") == "caller" and p.get("text"):
            return str(p["text"]), base_locale(locale)
    raise LookupError(f"call {call_id} has no caller words before event {seq}")


@router.post("/v1/inbox/labels", status_code=201, dependencies=[require(Perm.INTENTS_MANAGE)])
async def add_label(body: LabelIn, request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    """Label one utterance with an intent (or out_of_scope): a training example from now on
    (``<intents>/inbox_labels.yaml``); the next retraining uses it."""
    state = request.app.state
    try:
        text, locale = await asyncio.to_thread(_utterance, state.db, body.call_id, body.seq)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    store = _store(request)
    if body.label != OUT_OF_SCOPE and body.label not in await asyncio.to_thread(store.intents):
        raise HTTPException(422, [{"loc": ["body", "label"], "type": "value_error",
                                   "msg": f"unknown intent {body.label!r}"}])
    label = Label(call_id=body.call_id, seq=body.seq, text=text, locale=locale,
                  label=body.label, by=who.name, at=now_iso())
    try:
        await asyncio.to_thread(store.add, label)
    except ValueError as exc:
        raise HTTPException(422, [{"loc": ["body", "label"], "type": "value_error",
                                   "msg": str(exc)}]) from None
    await state.auth.audit(who, "intents.label", f"call:{body.call_id}#{body.seq}",
                           after={"label": body.label, "locale": locale},
                           ip=client_ip(request))
    return {"call_id": body.call_id, "seq": body.seq, "label": body.label, "locale": locale}


@router.get("/v1/inbox/retrain", dependencies=[require(Perm.INTENTS_MANAGE)])
async def retrain_status(request: Request) -> dict[str, Any]:
    """The last retraining: running, activated, kept as a candidate (with why), failed."""
    return _job(request).as_json()


@router.post("/v1/inbox/retrain", status_code=202,
             dependencies=[require(Perm.INTENTS_MANAGE)])
async def retrain(body: RetrainIn, request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    """Train a new intent model in the background with the labels; it is activated only if
    it does not regress on the held-out files (figures in the status)."""
    job = _job(request)
    if request.app.state.nlu is None:
        raise HTTPException(503, "the intent service is not loaded: there is no serving "
                            "model to gate a new one against (see /readyz)")
    if job.state == "running":
        raise HTTPException(409, "a retraining is already running")
    job.state, job.summary, job.result = "running", "training…", {}
    job.progress = TrainingProgress()
    job.started_at = datetime.now(UTC).isoformat()
    await request.app.state.auth.audit(who, "intents.retrain", "intent_model",
                                       after={"reason": body.reason}, ip=client_ip(request))
    job.task = asyncio.create_task(_run(request.app.state, job), name="inbox-retrain")
    return job.as_json()


async def _run(state: Any, job: RetrainJob) -> None:
    settings = state.settings
    started = datetime.now(UTC)
    try:
        result = await asyncio.to_thread(
            train_gated, settings.intents_dir, settings.intent_model_path,
            settings.data_dir / "intent-candidates", settings, job.progress)
        job.result = asdict(result)
        if result.activated and state.nlu is not None:
            await asyncio.to_thread(state.nlu.reload)
        job.progress.finish()  # 100 % together with the end state, in one loop step
        job.state = "activated" if result.activated else "kept"
        took = (datetime.now(UTC) - started) / timedelta(seconds=1)
        job.summary = (f"{'activated' if result.activated else 'kept as a candidate'} "
                       f"{result.candidate} ({result.reason}; {took:.0f} s)")
    except (OSError, ValueError, RuntimeError) as exc:
        job.state, job.summary = "failed", f"retraining failed: {exc}"
        log.error("inbox_retrain_failed", error=repr(exc))
