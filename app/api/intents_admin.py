"""The intents page: ``/console/intents`` (every intent's examples per locale, the serving
model's evaluation report on ``<intents>/tests/*.yaml``, the model versions, Train),
``/v1/intents/examples`` (add, edit, remove an example: ``app.nlu.edits``), ``/v1/intents/
report`` (the report, cached per model version), ``/v1/intents/models`` (list, activate a
version, roll back to the one before). Train is the inbox's gated retraining
(``POST /v1/inbox/retrain``, same gate and progress bar).

Who: ``intents:manage`` (analyst, admin). Each change is audited (before and after).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from app.api.console_ui import render
from app.api.inbox import _job
from app.auth import CurrentPrincipal, Perm, client_ip, require
from app.nlu.edits import EditRefused, EditStore, Example
from app.nlu.intents import IntentCatalog, IntentFileError
from app.nlu.report import evaluation_report
from app.nlu.versions import VersionRefused, activate_version, list_versions, previous_version
from app.settings import Settings

router = APIRouter(tags=["intents"])
Version = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")]
IntentName = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")
LocaleCode = Field(min_length=2, max_length=3, pattern=r"^[a-z]{2,3}$")
Utterance = Field(min_length=1, max_length=200)


class ExampleIn(BaseModel):
    intent: str = IntentName
    locale: str = LocaleCode
    text: str = Utterance

    def example(self) -> Example:
        return Example(self.intent, self.locale, self.text.strip())


class ExampleEdit(ExampleIn):
    new_text: str = Utterance


def _edits(request: Request) -> EditStore:
    state = request.app.state
    settings: Settings = state.settings
    store: EditStore | None = getattr(state, "intent_edits", None)
    if store is None or store.intents_dir != settings.intents_dir:
        store = EditStore(settings.intents_dir)
        state.intent_edits = store
    return store


def _refused(exc: EditRefused | VersionRefused, field: str) -> HTTPException:
    if exc.status == 422:
        return HTTPException(422, [{"loc": ["body", field] if field else ["path"],
                                    "type": "value_error", "msg": exc.reason}])
    return HTTPException(exc.status, exc.reason)


async def _change(request: Request, who: Any, action: str, ex: Example,
                  before: str | None, after: str | None, work: Any) -> dict[str, Any]:
    try:
        await asyncio.to_thread(work)
    except EditRefused as exc:
        raise _refused(exc, "text") from None
    await request.app.state.auth.audit(
        who, action, f"intent:{ex.intent}", ip=client_ip(request),
        before=None if before is None else {"locale": ex.locale, "text": before},
        after=None if after is None else {"locale": ex.locale, "text": after})
    return {"intent": ex.intent, "locale": ex.locale, "text": after, "before": before}


@router.post("/v1/intents/examples", status_code=201,
             dependencies=[require(Perm.INTENTS_MANAGE)])
async def add_example(body: ExampleIn, request: Request, who: CurrentPrincipal
                      ) -> dict[str, Any]:
    """Add an example (``<intents>/console_edits.yaml``): 422 with file:line: reason when
    the folder would not load with it (unknown intent, listed elsewhere); the next
    training uses it."""
    ex, store = body.example(), _edits(request)
    return await _change(request, who, "intents.example.add", ex, None, ex.text,
                         lambda: store.add(ex))


@router.patch("/v1/intents/examples", dependencies=[require(Perm.INTENTS_MANAGE)])
async def edit_example(body: ExampleEdit, request: Request, who: CurrentPrincipal
                       ) -> dict[str, Any]:
    """Change the text of an example added from the console (a shipped file's: 409)."""
    ex, store, new = body.example(), _edits(request), body.new_text.strip()
    return await _change(request, who, "intents.example.edit", ex, ex.text, new,
                         lambda: store.replace(ex, new))


@router.post("/v1/intents/examples/remove", dependencies=[require(Perm.INTENTS_MANAGE)])
async def remove_example(body: ExampleIn, request: Request, who: CurrentPrincipal
                         ) -> dict[str, Any]:
    """Remove an example added from the console (a shipped file's: 409, where it is)."""
    ex, store = body.example(), _edits(request)
    return await _change(request, who, "intents.example.remove", ex, ex.text, None,
                         lambda: store.remove(ex))


async def _report(request: Request) -> dict[str, Any]:
    """The serving model's report, computed once per model version."""
    state = request.app.state
    settings: Settings = state.settings
    nlu = state.nlu
    classifier = None if nlu is None else nlu.classifier
    if classifier is None:
        return {"error": "no intent model is serving (see /readyz)"}
    cache: dict[str, dict[str, Any]] | None = getattr(state, "intent_reports", None)
    if cache is None:
        cache = state.intent_reports = {}
    version = str(classifier.version)
    if version not in cache:
        try:
            cache[version] = await asyncio.to_thread(evaluation_report, classifier,
                                                     settings.intents_dir / "tests")
        except ValueError as exc:
            return {"version": version, "error": str(exc)}
    return cache[version]


@router.get("/v1/intents/report", dependencies=[require(Perm.INTENTS_MANAGE)])
async def intents_report(request: Request) -> dict[str, Any]:
    """The serving model on ``<intents>/tests/*.yaml`` per locale: per-intent precision,
    recall, F1, support; the confusion matrix (gold rows, predicted columns)."""
    return await _report(request)


@router.get("/v1/intents/models", dependencies=[require(Perm.INTENTS_MANAGE)])
async def intent_models(request: Request) -> dict[str, Any]:
    """Every model version (newest first): when, data hash, training figures, current."""
    settings: Settings = request.app.state.settings
    found = await asyncio.to_thread(list_versions, settings.intent_model_path)
    nlu = request.app.state.nlu
    return {"serving": None if nlu is None else nlu.version,
            "versions": [asdict(v) for v in found]}


async def _switch(request: Request, who: Any, action: str, version: str | None
                  ) -> dict[str, Any]:
    state = request.app.state
    settings: Settings = state.settings
    root = settings.intent_model_path
    try:
        target = version if version is not None else await asyncio.to_thread(
            previous_version, root)
        before = await asyncio.to_thread(activate_version, root, target, settings)
    except VersionRefused as exc:
        raise _refused(exc, "") from None
    if state.nlu is not None:
        await asyncio.to_thread(state.nlu.reload)
    await state.auth.audit(who, action, "intent_model", before={"version": before},
                           after={"version": target}, ip=client_ip(request))
    return {"current": target, "previous": before,
            "serving": None if state.nlu is None else state.nlu.version}


@router.post("/v1/intents/models/{version}/activate",
             dependencies=[require(Perm.INTENTS_MANAGE)])
async def activate_model(version: Version, request: Request, who: CurrentPrincipal
                         ) -> dict[str, Any]:
    """Serve ``version`` (refused with the reason when it cannot be served)."""
    return await _switch(request, who, "intents.model.activate", version)


@router.post("/v1/intents/models/rollback", dependencies=[require(Perm.INTENTS_MANAGE)])
async def rollback_model(request: Request, who: CurrentPrincipal) -> dict[str, Any]:
    """Serve the version before the current one (the newest older one)."""
    return await _switch(request, who, "intents.model.rollback", None)


def _rows(catalog: IntentCatalog, owned: dict[str, dict[str, list[str]]]
          ) -> list[dict[str, Any]]:
    return [{"name": i.name, "domain": i.domain, "description": i.description,
             "file": f"{i.file.name}:{i.line}",
             "examples": {loc: [{"text": t, "console": t in owned.get(i.name, {}).get(loc, [])}
                                for t in texts] for loc, texts in sorted(i.examples.items())}}
            for i in sorted(catalog.intents.values(), key=lambda i: i.name)]


@router.get("/console/intents", dependencies=[require(Perm.INTENTS_MANAGE)],
            response_class=HTMLResponse, include_in_schema=False)
async def intents_page(request: Request, who: CurrentPrincipal,
                       locale: Annotated[str, Query(max_length=3)] = "") -> Response:
    store = _edits(request)
    try:
        catalog = await asyncio.to_thread(store.catalog)
        owned = await asyncio.to_thread(store.owned)
    except (IntentFileError, EditRefused) as exc:
        raise HTTPException(503, f"intent data does not load: {exc}") from None
    locales = catalog.locales()
    shown = locale if locale in locales else ""
    models = await intent_models(request)
    return render(request, "intents.html", who, intents=_rows(catalog, owned),
                  locales=locales, shown=shown, report=await _report(request),
                  models=models, job=_job(request).as_json())
