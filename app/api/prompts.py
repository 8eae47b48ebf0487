"""The prompts page: ``/console/prompts`` lists every prompt of every served flow (flow,
node, locale, text) and the built-in system texts; ``/v1/config/prompts/play`` says a text
as a call would (the uploaded recording, or the real TTS; ``{slot}``s filled with sample
values, or 422 naming the slot); ``/v1/config/prompts/{key}/recording`` uploads (checked:
``app.tts.recordings.check_recording``) or removes the recording calls play instead of the
voice. A prompt's text is edited by uploading a new flow version (``flow_admin``).

Who: ``config:write`` (admin). Each upload and removal is audited with before and after.
"""

from __future__ import annotations

import asyncio
import io
import wave
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from app.api.console_ui import NO_STORE, render
from app.auth import CurrentPrincipal, Perm, client_ip, require
from app.flows.prompts import PromptText, all_prompts, sample_text
from app.media.audio import Pcm
from app.settings import Settings
from app.tts.errors import TtsError
from app.tts.recordings import MAX_RECORDING_BYTES, RecordedPrompts, check_recording
from app.tts.service import TtsService

router = APIRouter(tags=["config"])
PREVIEW_RATE_HZ = 16_000
Key = Annotated[str, Path(min_length=20, max_length=20, pattern=r"^[0-9a-f]+$",
                          description="a prompt's recording slot (from the prompt list)")]
TEXT_FIELDS = {"empty_text", "unspeakable", "too_long"}
LOCALE_FIELDS = {"unknown_locale", "voice_missing"}


def _refused(where: list[str], msg: str, status: int = 422) -> HTTPException:
    return HTTPException(status, [{"loc": where, "type": "value_error", "msg": msg}])


def _recordings(request: Request) -> RecordedPrompts:
    """The serving TTS's store (so its cache sees changes), else one on the same folder."""
    tts: TtsService | None = request.app.state.tts
    if tts is not None:
        return tts.recordings
    settings: Settings = request.app.state.settings
    return RecordedPrompts(settings.data_dir / "prompt-recordings")


def _prompts(request: Request) -> list[PromptText]:
    settings: Settings = request.app.state.settings
    return all_prompts(request.app.state.flows or {}, set(settings.tts_voices))


def listing(prompts: list[PromptText], recordings: dict[str, Any]) -> dict[str, Any]:
    """Prompts with their recording; recordings whose text no prompt says any more."""
    used = {p.key for p in prompts}
    return {"prompts": [{**p.as_json(), "recording": recordings[p.key].as_json()
                         if p.key in recordings else None} for p in prompts],
            "unused": [r.as_json() for k, r in recordings.items() if k not in used]}


@router.get("/console/prompts", dependencies=[require(Perm.CONFIG_WRITE)],
            response_class=HTMLResponse, include_in_schema=False)
async def prompts_page(request: Request, who: CurrentPrincipal) -> Response:
    found = await asyncio.to_thread(_recordings(request).all)
    return render(request, "prompts.html", who, **listing(_prompts(request), found),
                  tts_ready=request.app.state.tts is not None,
                  max_kb=MAX_RECORDING_BYTES // 1000)


@router.get("/v1/config/prompts", dependencies=[require(Perm.CONFIG_WRITE)])
async def list_prompts(request: Request) -> dict[str, Any]:
    """Every prompt (flow, where, locale, text, slots, key) with its uploaded recording."""
    found = await asyncio.to_thread(_recordings(request).all)
    return listing(_prompts(request), found)


def wav_bytes(pcm: Pcm) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(pcm.sample_rate_hz)
        wav.writeframes(pcm.data)
    return out.getvalue()


@router.get("/v1/config/prompts/play", dependencies=[require(Perm.CONFIG_WRITE)],
            response_class=Response,
            responses={200: {"content": {"audio/wav": {}}, "description": "the prompt"}})
async def play_prompt(
    request: Request, locale: Annotated[str, Query(min_length=1, max_length=16)],
    text: Annotated[str, Query(min_length=1, max_length=2000)],
    flow: Annotated[str, Query(max_length=64, description="its slots' readings")] = "",
    source: Annotated[Literal["call", "tts"], Query(
        description="call: what a call plays (an uploaded recording first); tts: the voice"
    )] = "call",
) -> Response:
    """The text as a WAV (16 kHz mono): what a call in ``locale`` hears."""
    tts: TtsService | None = request.app.state.tts
    if tts is None:
        raise HTTPException(503, "speech synthesis is not running (see /readyz)")
    flows = request.app.state.flows or {}
    if flow and flow not in flows:
        raise _refused(["query", "flow"], f"no flow {flow!r}")
    try:
        spoken = sample_text(text, locale, flows.get(flow) if flow else None)
    except ValueError as exc:
        raise _refused(["query", "text"], str(exc)) from None
    try:
        recorded = await tts.recorded(spoken, locale, PREVIEW_RATE_HZ) \
            if source == "call" else None
        pcm = recorded or await tts.synthesize(spoken, locale, PREVIEW_RATE_HZ,
                                               recorded=False)
    except TtsError as exc:
        if exc.reason in TEXT_FIELDS | LOCALE_FIELDS:
            field = "text" if exc.reason in TEXT_FIELDS else "locale"
            raise _refused(["query", field], f"{exc.reason}: {exc}") from None
        raise HTTPException(503, f"speech synthesis failed ({exc.reason}): {exc}") from None
    return Response(wav_bytes(pcm), media_type="audio/wav", headers={
        **NO_STORE, "X-Prompt-Source": "recording" if recorded is not None else "tts"})


def _find(request: Request, key: str) -> PromptText:
    for prompt in _prompts(request):
        if prompt.key == key:
            return prompt
    raise HTTPException(404, f"no prompt {key} in the served flows or the built-in texts")


@router.post("/v1/config/prompts/{key}/recording", status_code=201,
             dependencies=[require(Perm.CONFIG_WRITE)])
async def upload_recording(key: Key, request: Request, who: CurrentPrincipal,
                           file: Annotated[UploadFile, File(
                               description="a mono WAV, at most 30 s")]) -> dict[str, Any]:
    """Say this prompt with the uploaded recording instead of the voice (every call from
    now on); 422 with the reason when the file is not a usable recording."""
    prompt = _find(request, key)
    if prompt.slots:
        raise _refused(["path", "key"], "this prompt says caller data "
                       f"({', '.join('{' + s + '}' for s in prompt.slots)}): a recording "
                       "cannot; keep it synthesized")
    if prompt.wav:
        raise _refused(["path", "key"], f"the flow file plays {prompt.wav} here: change "
                       "the flow to use an uploaded recording")
    blob = await file.read(MAX_RECORDING_BYTES + 1)
    try:
        pcm = await asyncio.to_thread(check_recording, blob)
    except ValueError as exc:
        raise _refused(["body", "file"], f"{file.filename or 'upload'}: {exc}") from None
    store = _recordings(request)
    before = (await asyncio.to_thread(store.all)).get(key)
    saved = await asyncio.to_thread(store.add, prompt.locale, prompt.text, pcm, who.name,
                                    datetime.now(UTC).isoformat(timespec="seconds"))
    await request.app.state.auth.audit(
        who, "prompt.record", f"prompt:{key}",
        before=before.as_json() if before else None, after=saved.as_json(),
        ip=client_ip(request))
    return saved.as_json()


@router.delete("/v1/config/prompts/{key}/recording",
               dependencies=[require(Perm.CONFIG_WRITE)])
async def remove_recording(key: Key, request: Request,
                           who: CurrentPrincipal) -> dict[str, Any]:
    """Say this prompt with the voice again."""
    gone = await asyncio.to_thread(_recordings(request).remove, key)
    if gone is None:
        raise HTTPException(404, f"prompt {key} has no uploaded recording")
    await request.app.state.auth.audit(who, "prompt.unrecord", f"prompt:{key}",
                                       before=gone.as_json(), ip=client_ip(request))
    return {"removed": gone.as_json()}
